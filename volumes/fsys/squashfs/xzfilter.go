package squashfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xz filter ids (the .xz format's filter flags).
const (
	xzFilterX86      = 0x04
	xzFilterPowerPC  = 0x05
	xzFilterARM      = 0x07
	xzFilterARMThumb = 0x08
	xzFilterSPARC    = 0x09
	xzFilterLZMA2    = 0x21
)

// branchDecoders undo each branch converter on a whole block (the stream starts at offset 0).
var branchDecoders = map[uint64]func([]byte){
	xzFilterX86:      unfilterX86,
	xzFilterPowerPC:  unfilterPowerPC,
	xzFilterARM:      unfilterARM,
	xzFilterARMThumb: unfilterARMThumb,
	xzFilterSPARC:    unfilterSPARC,
}

// xzBlock is what decoding needs from one block of an xz stream.
type xzBlock struct {
	filters  []uint64 // filter ids, first to last; the last is LZMA2
	dictProp byte     // LZMA2 dictionary size, encoded
	dataOff  int      // where the compressed data starts
	dataEnd  int      // where it ends (after LZMA2's end marker)
	outSize  int      // the bytes its LZMA2 chunks say they produce
}

// dictBytes is the LZMA2 dictionary size the header asks for.
func (b xzBlock) dictBytes() uint64 { return uint64(2|b.dictProp&1) << (b.dictProp/2 + 11) }

// maxXzBlocks bounds the blocks of one squashfs block's xz stream. mksquashfs and squashfs-tools-ng
// write one (lzma_stream_buffer_encode); each block costs a fresh decoder, so thousands of tiny blocks
// would make one read slow.
const maxXzBlocks = 64

// xzCheckSizes is the size of a block's check field, by the stream's check type.
var xzCheckSizes = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

// parseXzBlocks reads the stream header and walks every block of the stream: its header, and the
// headers of its LZMA2 chunks, which give the block's end and the size of its output without decoding
// it. A stream may hold several blocks, each asking for its own dictionary: all are checked, and their
// outputs together may not exceed limit.
func parseXzBlocks(src []byte, limit int) ([]xzBlock, error) {
	if len(src) < 14 || !bytes.HasPrefix(src, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		return nil, fmt.Errorf("%w: xz stream header", ErrCorrupt)
	}
	checkSize := xzCheckSizes[src[7]&0x0f]
	var blocks []xzBlock
	total := 0
	for pos := 12; pos < len(src) && src[pos] != 0; { // a zero byte starts the index
		b, err := parseXzBlockHeader(src, pos)
		if err != nil {
			return nil, err
		}
		if b.dataEnd, b.outSize, err = lzma2Extent(src, b.dataOff); err != nil {
			return nil, err
		}
		if total += b.outSize; total > limit {
			return nil, fmt.Errorf("%w: xz blocks expand beyond %d bytes", ErrCorrupt, limit)
		}
		if len(blocks) == maxXzBlocks {
			return nil, fmt.Errorf("%w: xz stream of more than %d blocks (squashfs writers make one)", ErrUnsupported, maxXzBlocks)
		}
		blocks = append(blocks, b)
		pos = b.dataEnd + (4-(b.dataEnd-pos)%4)%4 + checkSize
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%w: xz stream has no block", ErrCorrupt)
	}
	return blocks, nil
}

// lzma2Extent walks LZMA2 chunk headers from off to the end marker: it returns where the data ends
// and the bytes the chunks produce.
func lzma2Extent(src []byte, off int) (end, out int, err error) {
	short := fmt.Errorf("%w: xz block's LZMA2 data is truncated", ErrCorrupt)
	for pos := off; ; {
		if pos >= len(src) {
			return 0, 0, short
		}
		c := src[pos]
		switch {
		case c == 0:
			return pos + 1, out, nil
		case c == 1 || c == 2: // stored chunk
			if pos+3 > len(src) {
				return 0, 0, short
			}
			n := int(binary.BigEndian.Uint16(src[pos+1:])) + 1
			out += n
			pos += 3 + n
		case c >= 0x80: // LZMA chunk: unpacked size, packed size, properties when it resets them
			if pos+5 > len(src) {
				return 0, 0, short
			}
			out += int(c&0x1f)<<16 + int(binary.BigEndian.Uint16(src[pos+1:])) + 1
			pos += 5 + int(binary.BigEndian.Uint16(src[pos+3:])) + 1
			if c >= 0xc0 {
				pos++
			}
		default:
			return 0, 0, fmt.Errorf("%w: xz block has LZMA2 control byte %#x", ErrCorrupt, c)
		}
	}
}

// parseXzBlockHeader reads the block header at off.
func parseXzBlockHeader(src []byte, off int) (xzBlock, error) {
	hdrLen := (int(src[off]) + 1) * 4
	if hdrLen < 8 || off+hdrLen > len(src) {
		return xzBlock{}, fmt.Errorf("%w: xz block header of %d bytes overruns the block", ErrCorrupt, hdrLen)
	}
	hdr := src[off : off+hdrLen-4] // without its CRC32
	flags, nfilters := hdr[1], int(hdr[1]&3)+1
	pos := 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			if _, n := binary.Uvarint(hdr[pos:]); n <= 0 {
				return xzBlock{}, fmt.Errorf("%w: xz block header size field", ErrCorrupt)
			} else {
				pos += n
			}
		}
	}
	b := xzBlock{dataOff: off + hdrLen}
	for range nfilters {
		id, n := binary.Uvarint(hdr[pos:])
		if n <= 0 {
			return xzBlock{}, fmt.Errorf("%w: xz filter id", ErrCorrupt)
		}
		pos += n
		size, n := binary.Uvarint(hdr[pos:])
		if n <= 0 || uint64(len(hdr)-pos-n) < size {
			return xzBlock{}, fmt.Errorf("%w: xz filter properties", ErrCorrupt)
		}
		pos += n
		props := hdr[pos : pos+int(size)]
		pos += int(size)
		if id == xzFilterLZMA2 && len(props) == 1 {
			b.dictProp = props[0]
		} else if len(props) != 0 {
			return xzBlock{}, fmt.Errorf("%w: xz filter %#x with a start offset", ErrUnsupported, id)
		}
		b.filters = append(b.filters, id)
	}
	if b.filters[len(b.filters)-1] != xzFilterLZMA2 || b.dictProp > 40 {
		return xzBlock{}, fmt.Errorf("%w: xz filter chain %x does not end in LZMA2", ErrCorrupt, b.filters)
	}
	for _, id := range b.filters[:len(b.filters)-1] {
		if branchDecoders[id] == nil {
			return xzBlock{}, fmt.Errorf("%w: xz filter %#x (IA-64 and delta filters are not implemented)", ErrUnsupported, id)
		}
	}
	return b, nil
}

// decompressXzChain decodes an xz stream's blocks with the raw LZMA2 reader and then undoes each
// block's branch-converter filters, if any: mksquashfs -Xbcj runs one before LZMA2, and the xz library
// decodes plain LZMA2 streams only.
func decompressXzChain(src []byte, limit int) ([]byte, error) {
	blocks, err := parseXzBlocks(src, limit)
	if err != nil {
		return nil, err
	}
	return decodeXzBlocks(src, blocks, limit)
}

// decodeXzBlocks decodes the blocks parsed from src into one buffer of at most limit bytes.
func decodeXzBlocks(src []byte, blocks []xzBlock, limit int) ([]byte, error) {
	out := make([]byte, 0, limit+1)
	for _, b := range blocks {
		n, err := decodeXzBlock(out[len(out):limit+1], src, b)
		if err != nil {
			return nil, err
		}
		if len(out)+n > limit {
			return nil, fmt.Errorf("%w: block expands beyond %d bytes", ErrCorrupt, limit)
		}
		out = out[:len(out)+n]
	}
	return out, nil
}

// decodeXzBlock decodes the block b of src into dst and returns the bytes it produced.
func decodeXzBlock(dst, src []byte, b xzBlock) (int, error) {
	// Each block starts a fresh dictionary, so no match reaches further back than the block's own
	// output: a larger dictionary would only be memory that a hostile header asks for (4 GiB).
	dict := min(b.dictBytes(), uint64(b.outSize))
	r, err := lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(bytes.NewReader(src[b.dataOff:b.dataEnd]))
	if err != nil {
		return 0, fmt.Errorf("%w: xz: %w", ErrCorrupt, err)
	}
	n, err := io.ReadFull(r, dst)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%w: xz: %w", ErrCorrupt, err)
	}
	if n != b.outSize {
		return 0, fmt.Errorf("%w: xz block gives %d bytes, its chunks say %d", ErrCorrupt, n, b.outSize)
	}
	// Filters were applied first to last when compressing, so undo them last to first.
	for k := len(b.filters) - 2; k >= 0; k-- {
		branchDecoders[b.filters[k]](dst[:n])
	}
	return n, nil
}

// unfilterX86 undoes the x86 branch converter: the encoder turned the relative targets of E8 (call)
// and E9 (jmp) instructions into absolute ones, so they compress better; here they become relative
// again. Operands whose top byte is neither 0x00 nor 0xFF were left alone, and the mask tracks
// E8/E9 bytes seen in the previous three positions, which the encoder treated specially.
func unfilterX86(buf []byte) {
	allowed := [8]bool{true, true, true, false, true, false, false, false}
	bitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	plain := func(b byte) bool { return b == 0 || b == 0xff }
	prevPos, prevMask := -1, uint32(0)
	for i := 0; i < len(buf)-4; i++ {
		if buf[i]&0xfe != 0xe8 {
			continue
		}
		if d := i - prevPos; d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << (d - 1)) & 7
			if prevMask != 0 {
				b := buf[i+4-int(bitNum[prevMask])]
				if !allowed[prevMask] || plain(b) {
					prevPos, prevMask = i, prevMask<<1|1
					continue
				}
			}
		}
		prevPos = i
		if !plain(buf[i+4]) {
			prevMask = prevMask<<1 | 1
			continue
		}
		src := binary.LittleEndian.Uint32(buf[i+1:])
		var dest uint32
		for {
			dest = src - uint32(i+5)
			if prevMask == 0 {
				break
			}
			j := bitNum[prevMask] * 8
			if !plain(byte(dest >> (24 - j))) {
				break
			}
			src = dest ^ (1<<(32-j) - 1)
		}
		dest &= 0x01ffffff
		dest |= -(dest & 0x01000000)
		binary.LittleEndian.PutUint32(buf[i+1:], dest)
		i += 4
	}
}

// The fixed-width branch converters below turn an absolute call target back into a relative one;
// each recognises its architecture's call instruction by its opcode bits.

// unfilterARM: BL, condition "always" (byte 3 = 0xEB), 24-bit word offset from pc+8.
func unfilterARM(buf []byte) {
	for i := 0; i+4 <= len(buf); i += 4 {
		if buf[i+3] != 0xeb {
			continue
		}
		src := (uint32(buf[i+2])<<16 | uint32(buf[i+1])<<8 | uint32(buf[i])) << 2
		dest := (src - uint32(i+8)) >> 2
		buf[i], buf[i+1], buf[i+2] = byte(dest), byte(dest>>8), byte(dest>>16)
	}
}

// unfilterARMThumb: the two-halfword Thumb BL, 22-bit halfword offset from pc+4.
func unfilterARMThumb(buf []byte) {
	for i := 0; i+4 <= len(buf); i += 2 {
		if buf[i+1]&0xf8 != 0xf0 || buf[i+3]&0xf8 != 0xf8 {
			continue
		}
		src := (uint32(buf[i+1]&7)<<19 | uint32(buf[i])<<11 | uint32(buf[i+3]&7)<<8 | uint32(buf[i+2])) << 1
		dest := (src - uint32(i+4)) >> 1
		buf[i+1] = 0xf0 | byte(dest>>19)&7
		buf[i] = byte(dest >> 11)
		buf[i+3] = 0xf8 | byte(dest>>8)&7
		buf[i+2] = byte(dest)
		i += 2
	}
}

// unfilterPowerPC: big-endian "bl" (opcode 18 with AA=0, LK=1), 24-bit field of a byte offset.
func unfilterPowerPC(buf []byte) {
	for i := 0; i+4 <= len(buf); i += 4 {
		if buf[i]>>2 != 0x12 || buf[i+3]&3 != 1 {
			continue
		}
		src := binary.BigEndian.Uint32(buf[i:]) & 0x03fffffc
		dest := src - uint32(i)
		binary.BigEndian.PutUint32(buf[i:], 0x48000000|dest&0x03fffffc|1)
	}
}

// unfilterSPARC: "call" with a 30-bit word displacement, converted only when it fits in 23 bits
// (the top bits all equal), which the two first-byte patterns select.
func unfilterSPARC(buf []byte) {
	for i := 0; i+4 <= len(buf); i += 4 {
		if !(buf[i] == 0x40 && buf[i+1]&0xc0 == 0) && !(buf[i] == 0x7f && buf[i+1]&0xc0 == 0xc0) {
			continue
		}
		src := binary.BigEndian.Uint32(buf[i:]) << 2
		dest := (src - uint32(i)) >> 2
		sign := -((dest >> 22) & 1)
		dest = (sign<<22)&0x3fffffff | dest&0x3fffff | 0x40000000
		binary.BigEndian.PutUint32(buf[i:], dest)
	}
}
