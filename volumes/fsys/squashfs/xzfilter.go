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
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

// decompressXzChain decodes an xz stream whose single block runs a branch-converter filter before
// LZMA2, as mksquashfs -Xbcj writes it: the LZMA2 data is decoded with the raw LZMA2 reader, then
// the filter is undone on the whole (at most one block) output.
func decompressXzChain(src []byte, limit int) ([]byte, error) {
	if len(src) < 14 || !bytes.HasPrefix(src, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		return nil, fmt.Errorf("%w: xz stream header", ErrCorrupt)
	}
	hdrLen := (int(src[12]) + 1) * 4
	if hdrLen < 8 || 12+hdrLen > len(src) {
		return nil, fmt.Errorf("%w: xz block header of %d bytes overruns the block", ErrCorrupt, hdrLen)
	}
	hdr := src[12 : 12+hdrLen-4] // without its CRC32
	flags, nfilters := hdr[1], int(hdr[1]&3)+1
	pos := 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			if _, n := binary.Uvarint(hdr[pos:]); n <= 0 {
				return nil, fmt.Errorf("%w: xz block header size field", ErrCorrupt)
			} else {
				pos += n
			}
		}
	}
	var ids []uint64
	var dictProp byte
	for range nfilters {
		id, n := binary.Uvarint(hdr[pos:])
		if n <= 0 {
			return nil, fmt.Errorf("%w: xz filter id", ErrCorrupt)
		}
		pos += n
		size, n := binary.Uvarint(hdr[pos:])
		if n <= 0 || uint64(len(hdr)-pos-n) < size {
			return nil, fmt.Errorf("%w: xz filter properties", ErrCorrupt)
		}
		pos += n
		props := hdr[pos : pos+int(size)]
		pos += int(size)
		if id == xzFilterLZMA2 && len(props) == 1 {
			dictProp = props[0]
		} else if len(props) != 0 {
			return nil, fmt.Errorf("%w: xz filter %#x with a start offset", ErrUnsupported, id)
		}
		ids = append(ids, id)
	}
	if ids[len(ids)-1] != xzFilterLZMA2 || dictProp > 40 {
		return nil, fmt.Errorf("%w: xz filter chain %x does not end in LZMA2", ErrCorrupt, ids)
	}
	for _, id := range ids[:len(ids)-1] {
		if id != xzFilterX86 {
			return nil, fmt.Errorf("%w: xz branch filter %#x (only x86 is implemented)", ErrUnsupported, id)
		}
	}
	dict := min(uint64(2|dictProp&1)<<(dictProp/2+11), 1<<30)
	r, err := lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(bytes.NewReader(src[12+hdrLen:]))
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
	for range ids[:len(ids)-1] {
		unfilterX86(out)
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
