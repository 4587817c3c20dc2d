// Package huffman decodes the canonical, MSB-first Huffman codes of Microsoft's XPRESS Huffman and
// LZX formats (codes of at most 16 bits, described only by each symbol's code length).
package huffman

import (
	"errors"
	"fmt"
)

// MaxLen is the longest code length either format uses.
const MaxLen = 16

// fastBits is the width of the direct lookup table; longer codes take a short canonical search.
// Kept small so that building a table per 4 KiB XPRESS chunk stays cheap.
const fastBits = 10

// ErrBadCode reports code lengths that over-subscribe the code space, or bits that match no code.
var ErrBadCode = errors.New("invalid Huffman code")

// smallBits is the width of a Small decoder's direct table.
const smallBits = 7

// Decoder maps the next bits of a stream to a symbol. The zero value is unusable; call Init.
type Decoder struct {
	fast [1 << fastBits]uint16 // symbol<<5 | length; Further = look further (or no code)
	canon
}

// Small is a Decoder with a direct table of 7 bits, for codes of a few symbols (LZX's pretree and
// aligned offsets), whose table is rebuilt often and read a few hundred times.
type Small struct {
	fast [1 << smallBits]uint16
	canon
}

// canon is what a decoder keeps of a canonical code beyond its direct table, for the codes longer
// than the table.
type canon struct {
	count  [MaxLen + 1]uint16 // codes of each length
	first  [MaxLen + 1]uint32 // first canonical code of each length
	maxLen int
	// The symbols of each length in symbol order, which is their codes' order. Length 0 holds
	// the unused symbols.
	syms [MaxLen + 1][MaxSymbols]uint16
}

// MaxSymbols is the largest alphabet a decoder takes (XPRESS Huffman's 512 symbols; LZX's main
// code has at most 496).
const MaxSymbols = 512

// Init builds the decoder for the code lengths lens (0 = symbol unused). An incomplete code is
// accepted (encoders emit one for a single used symbol); bits outside it fail to decode. An
// over-subscribed code is an error.
func (d *Decoder) Init(lens []uint8) error { return d.build(d.fast[:], fastBits, lens) }

// Init is Decoder.Init.
func (d *Small) Init(lens []uint8) error { return d.build(d.fast[:], smallBits, lens) }

// build fills the direct table fast of tbits bits and c for the code lengths lens.
func (c *canon) build(fast []uint16, tbits int, lens []uint8) error {
	if len(lens) > MaxSymbols {
		return fmt.Errorf("%w: %d symbols", ErrBadCode, len(lens))
	}
	// One pass in symbol order puts each symbol in its length's list, which counts them.
	var count [MaxLen + 1]uint16
	syms := &c.syms
	for s, l := range lens {
		if l > MaxLen {
			return fmt.Errorf("%w: code length over %d", ErrBadCode, MaxLen)
		}
		n := count[l]
		syms[l][n&(MaxSymbols-1)] = uint16(s)
		count[l] = n + 1
	}
	return c.finish(fast, tbits, &count)
}

// InitPacked is Init for code lengths packed two to a byte, the first in the low nibble: XPRESS
// Huffman's table, read without unpacking it first.
func (d *Decoder) InitPacked(packed []byte) error {
	if 2*len(packed) > MaxSymbols {
		return fmt.Errorf("%w: %d symbols", ErrBadCode, 2*len(packed))
	}
	var count [MaxLen + 1]uint16
	syms := &d.syms
	for i, b := range packed {
		lo, hi := b&15, b>>4
		n := count[lo]
		syms[lo][n&(MaxSymbols-1)] = uint16(2 * i)
		count[lo] = n + 1
		n = count[hi]
		syms[hi][n&(MaxSymbols-1)] = uint16(2*i + 1)
		count[hi] = n + 1
	}
	return d.finish(d.fast[:], fastBits, &count)
}

// finish is build once the symbols are in their lengths' lists, count of each.
func (c *canon) finish(fast []uint16, tbits int, cnt *[MaxLen + 1]uint16) error {
	count := *cnt
	syms := &c.syms
	count[0] = 0
	c.count = count
	c.maxLen = 0
	for l := MaxLen; l > 0; l-- {
		if count[l] != 0 {
			c.maxLen = l
			break
		}
	}
	// Kraft: the codes of each length must fit in what the shorter ones left free.
	left := 1
	for l := 1; l <= MaxLen; l++ {
		left = left<<1 - int(count[l])
		if left < 0 {
			return fmt.Errorf("%w: over-subscribed at length %d", ErrBadCode, l)
		}
	}
	code := uint32(0)
	for l := 1; l <= MaxLen; l++ {
		c.first[l] = code
		code = (code + uint32(count[l])) << 1
	}
	// The short codes fill the direct table from its start, shortest first, each over the span
	// of entries its code prefixes; the rest of the table (prefixes of longer codes, or no code)
	// is left to Slow. The spans of a length are all alike: one loop for each.
	at := 0
	for l := 1; l <= tbits; l++ {
		span := 1 << (tbits - l)
		syms := syms[l][:count[l]]
		tab := fast[at : at+len(syms)*span]
		at += len(tab)
		switch span {
		case 1:
			tab = tab[:len(syms)]
			for i, s := range syms {
				tab[i] = s<<5 | uint16(l)
			}
		case 2:
			for _, s := range syms {
				e := s<<5 | uint16(l)
				tab[0], tab[1] = e, e
				tab = tab[2:]
			}
		case 4:
			for _, s := range syms {
				e := s<<5 | uint16(l)
				tab[0], tab[1], tab[2], tab[3] = e, e, e, e
				tab = tab[4:]
			}
		default:
			for _, s := range syms {
				e := s<<5 | uint16(l)
				for f := tab[:span]; len(f) >= 8; f = f[8:] {
					f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7] = e, e, e, e, e, e, e, e
				}
				tab = tab[span:]
			}
		}
	}
	for i := range fast[at:] { // not clear: Further is not 0
		fast[at+i] = Further
	}
	return nil
}

// Decode looks up the symbol whose code starts bits, the next 16 bits of the stream with the next
// bit in the most significant position. It returns the symbol and its code length (0 = no code).
func (d *Decoder) Decode(bits uint32) (sym, n int) {
	if e := d.Entry(bits); e&31 != 0 {
		return int(e >> 5), int(e & 31)
	}
	return d.Slow(bits)
}

// Decode is Decoder.Decode.
func (d *Small) Decode(bits uint32) (sym, n int) {
	if e := d.fast[uint16(bits)>>(16-smallBits)]; e&31 != 0 {
		return int(e >> 5), int(e & 31)
	}
	return d.slow(bits, smallBits)
}

// Entry is Decode's first step, small enough to inline in a decoding loop: the direct table's entry
// for bits, symbol<<5 | length, with length 0 when the code is longer than the table (then call
// Slow) or there is none.
func (d *Decoder) Entry(bits uint32) uint16 { return d.fast[uint16(bits)>>(16-fastBits)] }

// Top is Entry for a bit buffer whose next bit is bit 63 of buf, the form the decoding loops keep,
// widened as it loads so that splitting it takes no 16-bit operations.
func (d *Decoder) Top(buf uint64) uint32 { return uint32(d.fast[buf>>(64-fastBits)]) }

// Drop removes the code of the direct table's entry e (its length in the low 5 bits) from the
// top of buf, which holds nb bits: the step after Top in the decoding loops.
func Drop(buf uint64, nb int, e uint32) (uint64, int) {
	n := int(e & 31)
	return buf << (n & 63), nb - n
}

// Top is Decoder.Top.
func (d *Small) Top(buf uint64) uint32 { return uint32(d.fast[buf>>(64-smallBits)]) }

// Further is the direct table's entry for bits that start a code longer than the table, or no
// code: length 0, and a symbol above any code's, so that a loop testing for literals (symbols
// below some bound) first has no need to test the length for them.
const Further = 0xFFE0

// Slow finds a code longer than the direct table.
func (d *Decoder) Slow(bits uint32) (sym, n int) { return d.slow(bits, fastBits) }

// Slow is Decoder.Slow.
func (d *Small) Slow(bits uint32) (sym, n int) { return d.slow(bits, smallBits) }

func (c *canon) slow(bits uint32, tbits int) (sym, n int) {
	for l := tbits + 1; l <= c.maxLen; l++ {
		v := bits >> (16 - l)
		if k := v - c.first[l]; k < uint32(c.count[l]) {
			return int(c.syms[l][k&(MaxSymbols-1)]), l
		}
	}
	return 0, 0
}
