// Package xpress decompresses the XPRESS Huffman format of Microsoft's [MS-XCA] (section 2.1), the
// "XPRESS4K/8K/16K" of Windows' WOF (CompactOS) compression and of WIM resources.
package xpress

import (
	"encoding/binary"
	"errors"
	"fmt"

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

// word reads the 16-bit little-endian word at pos; past the end the stream reads as zeros (the
// compressor stops writing once the output is complete).
func word(src []byte, pos int) uint32 {
	if pos >= 0 && pos+2 <= len(src) {
		return uint32(src[pos]) | uint32(src[pos+1])<<8
	}
	return 0
}

// run decodes blocks until dst is full. The bit state lives in local variables (bits holds the next
// bits, most significant first; more counts the valid bits beyond the top 16, MS-XCA's
// ExtraBitCount; pos is the next input byte, after the words already in bits), so that the loop
// keeps it in registers.
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
		bits := word(src, pos)<<16 | word(src, pos+2)
		pos += 4
		more := 16
		end := min(out+blockSize, len(dst))
		for out < end {
			e := h.Entry(bits >> 16)
			sym, n := int(e>>5), int(e&31)
			if n == 0 {
				if sym, n = h.Slow(bits >> 16); n == 0 {
					return corrupt("no Huffman code matches the input at output byte %d", out)
				}
			}
			// Consume n bits, refilling one word whenever fewer than 16 remain (MS-XCA).
			bits <<= n
			if more -= n; more < 0 {
				bits |= word(src, pos) << -more
				pos += 2
				more += 16
			}
			if sym < 256 {
				dst[out] = byte(sym)
				out++
				continue
			}
			sym -= 256
			length, offBits := sym&15, sym>>4
			if length == 15 {
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
			offset := int(bits>>(32-offBits)) | 1<<offBits // bits>>32 is 0 for offBits 0
			bits <<= offBits
			if more -= offBits; more < 0 {
				bits |= word(src, pos) << -more
				pos += 2
				more += 16
			}
			if offset > out {
				return corrupt("match at output byte %d reaches %d bytes back", out, offset)
			}
			if length > len(dst)-out {
				return corrupt("match of %d bytes at output byte %d overruns the %d-byte output", length, out, len(dst))
			}
			if from := out - offset; offset >= 8 && out+length+8 <= len(dst) {
				// lzcopy.Match's common case, inline: 8-byte words from bytes already final.
				// Most matches are short: the first word without the loop.
				binary.LittleEndian.PutUint64(dst[out:], binary.LittleEndian.Uint64(dst[from:]))
				for i := 8; i < length; i += 8 {
					binary.LittleEndian.PutUint64(dst[out+i:], binary.LittleEndian.Uint64(dst[from+i:]))
				}
			} else {
				lzcopy.Match(dst, out, offset, length)
			}
			out += length
		}
		if pos > len(src)+4 {
			return corrupt("input of %d bytes ends before the output is complete", len(src))
		}
	}
	return nil
}
