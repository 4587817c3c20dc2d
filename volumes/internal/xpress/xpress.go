// Package xpress decompresses the XPRESS Huffman format of Microsoft's [MS-XCA] (section 2.1), the
// "XPRESS4K/8K/16K" of Windows' WOF (CompactOS) compression and of WIM resources.
package xpress

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/internal/huffman"
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

type decoder struct {
	src  []byte
	pos  int    // next input byte: after the words already in bits
	bits uint32 // the next bits, most significant first
	more int    // valid bits in bits beyond the top 16 (MS-XCA's ExtraBitCount)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// word reads the 16-bit little-endian word at pos; past the end the stream reads as zeros (the
// compressor stops writing once the output is complete).
func (d *decoder) word() uint32 {
	if d.pos+2 <= len(d.src) {
		w := binary.LittleEndian.Uint16(d.src[d.pos:])
		d.pos += 2
		return uint32(w)
	}
	d.pos += 2
	return 0
}

// consume drops n (≤ 16) bits and refills as MS-XCA does, one word whenever fewer than 16 remain.
func (d *decoder) consume(n int) {
	d.bits <<= n
	d.more -= n
	if d.more < 0 {
		d.bits |= d.word() << -d.more
		d.more += 16
	}
}

func (d *decoder) run(h *huffman.Decoder, dst, src []byte) error {
	d.src = src
	out := 0
	var lens [numSymbols]uint8
	for out < len(dst) {
		if d.pos+tableBytes > len(src) {
			return corrupt("Huffman table at input byte %d is cut short (%d bytes of input)", d.pos, len(src))
		}
		for i, b := range src[d.pos : d.pos+tableBytes] {
			lens[2*i], lens[2*i+1] = b&15, b>>4
		}
		if err := h.Init(lens[:]); err != nil {
			return corrupt("block at output byte %d: %v", out, err)
		}
		d.pos += tableBytes
		d.bits = d.word() << 16
		d.bits |= d.word()
		d.more = 16
		if d.pos > len(src)+4 {
			return corrupt("input ends inside the block header")
		}
		end := min(out+blockSize, len(dst))
		for out < end {
			e := h.Entry(d.bits >> 16)
			sym, n := int(e>>5), int(e&31)
			if n == 0 {
				sym, n = h.Slow(d.bits >> 16)
			}
			if n == 0 {
				return corrupt("no Huffman code matches the input at output byte %d", out)
			}
			d.consume(n)
			if sym < 256 {
				dst[out] = byte(sym)
				out++
				continue
			}
			sym -= 256
			length, offBits := sym&15, sym>>4
			if length == 15 {
				if d.pos >= len(src) {
					return corrupt("match length byte past the input")
				}
				length = int(src[d.pos])
				d.pos++
				if length == 255 {
					if d.pos+2 > len(src) {
						return corrupt("match length word past the input")
					}
					length = int(binary.LittleEndian.Uint16(src[d.pos:]))
					d.pos += 2
					if length < 15 {
						return corrupt("match length %d below its escape", length)
					}
					length -= 15
				}
				length += 15
			}
			length += minMatch
			offset := int(d.bits>>(32-offBits)) | 1<<offBits // bits>>32 is 0 for offBits 0
			d.consume(offBits)
			if offset > out {
				return corrupt("match at output byte %d reaches %d bytes back", out, offset)
			}
			if length > len(dst)-out {
				return corrupt("match of %d bytes at output byte %d overruns the %d-byte output", length, out, len(dst))
			}
			copyMatch(dst, out, offset, length)
			out += length
		}
		if d.pos > len(src)+4 {
			return corrupt("input of %d bytes ends before the output is complete", len(src))
		}
	}
	return nil
}

// copyMatch copies length bytes from offset back; overlapping copies repeat the pattern.
func copyMatch(dst []byte, out, offset, length int) {
	from := out - offset
	if offset >= length {
		copy(dst[out:out+length], dst[from:from+length])
		return
	}
	for i := 0; i < length; i++ {
		dst[out+i] = dst[from+i]
	}
}
