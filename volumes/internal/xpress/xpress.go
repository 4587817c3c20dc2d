// Package xpress decompresses the XPRESS Huffman format of Microsoft's [MS-XCA] (section 2.1), the
// "XPRESS4K/8K/16K" of Windows' WOF (CompactOS) compression and of WIM resources.
package xpress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/vmdkmount/vmdkmount/volumes/internal/huffman"
	"github.com/vmdkmount/vmdkmount/volumes/internal/lzcopy"
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("xpress: corrupt data")

const (
	numSymbols = 512
	tableBytes = numSymbols / 2 // 4-bit code lengths, two per byte
	blockSize  = 65536          // each block restarts the Huffman table
	minMatch   = 3
)

// Decompress expands src into dst, which must have exactly the decompressed size: the format does
// not mark its end, so the caller's size is what stops it. It never writes past dst.
func Decompress(dst, src []byte) error {
	var d huffman.Decoder
	return (&decoder{}).run(&d, dst, src)
}

// Decoder keeps the Huffman tables between calls, to spare an allocation per chunk. A Decoder is
// not safe for concurrent use.
type Decoder struct {
	h huffman.Decoder
}

// Decompress is the package Decompress reusing d's tables.
func (d *Decoder) Decompress(dst, src []byte) error {
	return (&decoder{}).run(&d.h, dst, src)
}

type decoder struct{}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// run decodes blocks until dst is full. The bit state lives in local variables, so that the loop
// keeps it in registers: buf holds the next nb bits, most significant first, and pos is the next
// input byte after them. buf is refilled two words at a time once fewer than 32 bits are left,
// which covers a symbol's code (at most 15 bits) and its offset bits (at most 15).
//
// MS-XCA's decoder holds 16 to 31 bits after each code, and the match length bytes it reads
// between codes (and the next block's table) come from the input after the words it has loaded.
// There, pos steps back over the words buf holds beyond those bits (or on by the one word it
// lacks): (nb-16)>>4 words, an arithmetic shift, so -1 for fewer than 16 bits.
func (*decoder) run(h *huffman.Decoder, dst, src []byte) error {
	out, pos := 0, 0
	var lens [numSymbols]uint8
	for out < len(dst) {
		if pos+tableBytes > len(src) {
			return corrupt("Huffman table at input byte %d is cut short (%d bytes of input)", pos, len(src))
		}
		for i, b := range src[pos : pos+tableBytes] {
			lens[2*i], lens[2*i+1] = b&15, b>>4
		}
		if err := h.Init(lens[:]); err != nil {
			return corrupt("block at output byte %d: %v", out, err)
		}
		pos += tableBytes
		var buf uint64
		nb := 0
		end := min(out+blockSize, len(dst))
		for out < end {
			if nb < 32 {
				var w uint32
				if pos+4 <= len(src) { // refill's common case
					w = bits.RotateLeft32(binary.LittleEndian.Uint32(src[pos:pos+4]), 16)
				} else {
					w = huffman.TailWords(src, pos)
				}
				buf |= uint64(w) << ((32 - nb) & 63)
				pos, nb = pos+4, nb+32
			}
			e := h.Top(buf)
			n := int(e & 31)
			if n == 0 {
				var sym int
				if sym, n = h.Slow(uint32(buf >> 48)); n == 0 {
					return corrupt("no Huffman code matches the input at output byte %d", out)
				}
				e = uint32(sym<<5 | n)
			}
			buf <<= n & 63
			nb -= n
			if e < 256<<5 {
				dst[out] = byte(e >> 5)
				out++
				continue
			}
			sym := int(e>>5) - 256
			length, offBits := sym&15, sym>>4
			if length == 15 {
				// The length bytes sit where MS-XCA's decoder is in the input: drop the words
				// loaded past it and resume after them.
				extra := (nb - 16) >> 4
				pos -= 2 * extra
				nb -= 16 * extra
				buf &^= ^uint64(0) >> (nb & 63)
				if pos >= len(src) {
					return corrupt("match length byte past the input")
				}
				length = int(src[pos])
				pos++
				if length == 255 {
					if pos+2 > len(src) {
						return corrupt("match length word past the input")
					}
					length = int(binary.LittleEndian.Uint16(src[pos:]))
					pos += 2
					if length < 15 {
						return corrupt("match length %d below its escape", length)
					}
					length -= 15
				}
				length += 15
			}
			length += minMatch
			offset := int(buf>>1>>((63-offBits)&63)) | 1<<(offBits&63) // 0 bits for offBits 0
			buf <<= offBits & 63
			nb -= offBits
			if offset > out {
				return corrupt("match at output byte %d reaches %d bytes back", out, offset)
			}
			if length > len(dst)-out {
				return corrupt("match of %d bytes at output byte %d overruns the %d-byte output", length, out, len(dst))
			}
			lzcopy.Match(dst, out, offset, length)
			out += length
		}
		// The next block's table, like the length bytes, follows the words MS-XCA has loaded.
		pos -= 2 * ((nb - 16) >> 4)
		if pos > len(src)+4 {
			return corrupt("input of %d bytes ends before the output is complete", len(src))
		}
	}
	return nil
}
