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

// xzBlock is what decoding needs from an xz stream's (first) block header.
type xzBlock struct {
	filters  []uint64 // filter ids, first to last; the last is LZMA2
	dictProp byte     // LZMA2 dictionary size, encoded
	dataOff  int      // where the compressed data starts
}

// dictBytes is the LZMA2 dictionary size the header asks for.
func (b xzBlock) dictBytes() uint64 { return uint64(2|b.dictProp&1) << (b.dictProp/2 + 11) }

// parseXzBlock reads the stream header and the block header after it.
func parseXzBlock(src []byte) (xzBlock, error) {
	if len(src) < 14 || !bytes.HasPrefix(src, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		return xzBlock{}, fmt.Errorf("%w: xz stream header", ErrCorrupt)
	}
	hdrLen := (int(src[12]) + 1) * 4
	if hdrLen < 8 || 12+hdrLen > len(src) {
		return xzBlock{}, fmt.Errorf("%w: xz block header of %d bytes overruns the block", ErrCorrupt, hdrLen)
	}
	hdr := src[12 : 12+hdrLen-4] // without its CRC32
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
	b := xzBlock{dataOff: 12 + hdrLen}
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

// decompressXzChain decodes an xz stream's single block with the raw LZMA2 reader and then undoes its
// branch-converter filters, if any, on the whole (at most one block) output: mksquashfs -Xbcj runs
// one before LZMA2, and the xz library decodes plain LZMA2 streams only.
func decompressXzChain(src []byte, limit int) ([]byte, error) {
	b, err := parseXzBlock(src)
	if err != nil {
		return nil, err
	}
	return decodeXzBlock(src, b, limit)
}

// decodeXzBlock decodes the block b parsed from src (see decompressXzChain).
func decodeXzBlock(src []byte, b xzBlock, limit int) ([]byte, error) {
	// Each block is a stream of its own, so no match reaches further back than the output so far: a
	// dictionary larger than the block would only be memory that a hostile header asks for (1 GiB per
	// block when it was bounded by the format alone).
	dict := min(b.dictBytes(), uint64(limit)+1)
	r, err := lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(bytes.NewReader(src[b.dataOff:]))
	if err != nil {
		return nil, fmt.Errorf("%w: xz: %w", ErrCorrupt, err)
	}
	out := make([]byte, limit+1)
	n, err := io.ReadFull(r, out)
	if n > limit {
		return nil, fmt.Errorf("%w: block expands beyond %d bytes", ErrCorrupt, limit)
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: xz: %w", ErrCorrupt, err)
	}
	out = out[:n]
	// Filters were applied first to last when compressing, so undo them last to first.
	for k := len(b.filters) - 2; k >= 0; k-- {
		branchDecoders[b.filters[k]](out)
	}
	return out, nil
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
