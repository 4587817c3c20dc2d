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

// MaxSize is the largest output Decompress expands: one Huffman block, as large as any chunk of
// WOF (16 KiB) or of a WIM resource (64 KiB).
const MaxSize = blockSize

// Decompress expands src into dst, which must have exactly the decompressed size (at most
// MaxSize): the format does not mark its end, so the caller's size is what stops it. It never
// writes past dst.
func Decompress(dst, src []byte) error {
	return new(Decoder).Decompress(dst, src)
}

// Decoder keeps the Huffman table and the output window between calls, to spare allocations per
// chunk. A Decoder is not safe for concurrent use.
type Decoder struct {
	h huffman.Decoder
	// The output, copied to the caller's buffer at the end: matches copy within it without
	// bounds checks.
	win lzcopy.Window
	// The input, then zeros, which the symbol loop reads at its position masked to the array:
	// neither a bounds check nor a branch for the input's end (past which a valid stream reads
	// at most a few zero bytes; a stream that reads further fails the check at its end,
	// whatever it read).
	in [inMask + 1 + inPad]byte
}

const (
	inMask = 1<<17 - 1 // the largest input, less inPad: twice MaxSize
	inPad  = 16
)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Decompress is the package Decompress reusing d's table and window.
func (d *Decoder) Decompress(dst, src []byte) error {
	if len(dst) > MaxSize {
		return corrupt("output of %d bytes exceeds %d", len(dst), MaxSize)
	}
	if err := d.run(len(dst), src); err != nil {
		return err
	}
	copy(dst, d.win[:len(dst)])
	return nil
}

// run decodes the block (the Huffman table, then its symbols) into d.win[:size]. The bit state
// lives in local variables, so that the loop keeps it in registers: buf holds the next nb bits,
// most significant first, and pos is the next input byte after them. buf is refilled two words
// at a time once fewer than 32 bits are left, which covers a symbol's code (at most 15 bits) and
// its offset bits (at most 15).
//
// MS-XCA's decoder holds 16 to 31 bits after each code, and the match length bytes it reads
// between codes come from the input after the words it has loaded. There, pos steps back over
// the words buf holds beyond those bits (or on by the one word it lacks): (nb-16)>>4 words, an
// arithmetic shift, so -1 for fewer than 16 bits.
func (d *Decoder) run(size int, src []byte) error {
	if size == 0 {
		return nil
	}
	if tableBytes > len(src) {
		return corrupt("Huffman table is cut short (%d bytes of input)", len(src))
	}
	if len(src) > inMask+1-inPad {
		return corrupt("input of %d bytes exceeds %d", len(src), inMask+1-inPad)
	}
	clear(d.in[copy(d.in[:], src):][:inPad])
	h := &d.h
	if err := h.InitPacked(src[:tableBytes]); err != nil {
		return corrupt("Huffman table: %v", err)
	}
	w := &d.win
	dst := w[:size]
	out, pos := 0, tableBytes
	var buf uint64
	nb := 0
	for {
		// Literals in a loop of their own, which the compiler keeps tight; it checks the end
		// of the output for the loop of matches too.
		var e uint32
		for {
			if uint(out) >= uint(len(dst)) { // unsigned: lets the compiler drop dst[out]'s bounds check
				if pos-2*((nb-16)>>4) > len(src)+4 {
					return corrupt("input of %d bytes ends before the output is complete", len(src))
				}
				return nil
			}
			if nb < 32 {
				p := pos & inMask
				v := bits.RotateLeft32(binary.LittleEndian.Uint32(d.in[p:p+4]), 16) // the first word first
				buf |= uint64(v) << ((32 - nb) & 63)
				pos, nb = pos+4, nb+32
			}
			e = h.Top(buf)
			if e >= 256<<5 { // not a literal with a short code (huffman.Further is above)
				break
			}
			buf, nb = huffman.Drop(buf, nb, e)
			dst[out] = byte(e >> 5)
			out++
			// A second symbol without a refill: 17 bits are left of the 32.
			if uint(out) >= uint(len(dst)) {
				continue
			}
			e = h.Top(buf)
			if e >= 256<<5 {
				break
			}
			buf, nb = huffman.Drop(buf, nb, e)
			dst[out] = byte(e >> 5)
			out++
		}
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
		if e < 256<<5 { // a literal with a long code
			dst[out] = byte(e >> 5)
			out++
			continue
		}
		if nb < 16 { // after a code read without a refill
			p := pos & inMask
			v := bits.RotateLeft32(binary.LittleEndian.Uint32(d.in[p:p+4]), 16)
			buf |= uint64(v) << ((32 - nb) & 63)
			pos, nb = pos+4, nb+32
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
		w.Match(out, offset, length)
		out += length
	}
}
