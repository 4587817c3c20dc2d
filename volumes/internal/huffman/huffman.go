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
	index  [MaxLen + 1]uint16 // position in sorted of the first symbol of each length
	sorted []uint16           // symbols ordered by (length, symbol)
	maxLen int
}

// Init builds the decoder for the code lengths lens (0 = symbol unused). An incomplete code is
// accepted (encoders emit one for a single used symbol); bits outside it fail to decode. An
// over-subscribed code is an error.
func (d *Decoder) Init(lens []uint8) error { return d.build(d.fast[:], fastBits, lens) }

// Init is Decoder.Init.
func (d *Small) Init(lens []uint8) error { return d.build(d.fast[:], smallBits, lens) }

// build fills the direct table fast of tbits bits and c for the code lengths lens.
func (c *canon) build(fast []uint16, tbits int, lens []uint8) error {
	if len(lens) > 1<<11 {
		return fmt.Errorf("%w: %d symbols", ErrBadCode, len(lens))
	}
	// Counted into 32 slots so that the length check leaves the loop (lengths fit in 5 bits first),
	// in two histograms, even and odd symbols, so that runs of equal lengths do not wait on each
	// other's increments.
	var count, odd [32]uint16
	var all uint8
	n := len(lens) &^ 1
	for i := 0; i < n; i += 2 {
		a, b := lens[i], lens[i+1]
		all |= a | b
		count[a&31]++
		odd[b&31]++
	}
	if n < len(lens) {
		all |= lens[n]
		count[lens[n]&31]++
	}
	for i := range count {
		count[i] += odd[i]
	}
	if all > 31 || count[17]|count[18]|count[19]|count[20]|count[21]|count[22]|count[23]|count[24]|
		count[25]|count[26]|count[27]|count[28]|count[29]|count[30]|count[31] != 0 {
		return fmt.Errorf("%w: code length over %d", ErrBadCode, MaxLen)
	}
	copy(c.count[:], count[:MaxLen+1])
	c.count[0] = 0
	c.maxLen = 0
	for l := MaxLen; l > 0; l-- {
		if c.count[l] != 0 {
			c.maxLen = l
			break
		}
	}
	// Kraft: the codes of each length must fit in what the shorter ones left free.
	left := 1
	for l := 1; l <= MaxLen; l++ {
		left = left<<1 - int(c.count[l])
		if left < 0 {
			return fmt.Errorf("%w: over-subscribed at length %d", ErrBadCode, l)
		}
	}
	code, idx := uint32(0), uint16(0)
	var next [32]uint16 // 32: indexed by a length masked to 5 bits, which the bounds check sees
	for l := 1; l <= MaxLen; l++ {
		c.first[l] = code
		c.index[l] = idx
		next[l] = idx
		code = (code + uint32(c.count[l])) << 1
		idx += c.count[l]
	}
	// The symbols sorted by (length, symbol), which is canonical order: a counting sort, the
	// unused symbols (length 0) after the rest.
	if cap(c.sorted) < len(lens) {
		c.sorted = make([]uint16, len(lens), max(len(lens), 512))
	}
	order := c.sorted[:len(lens)]
	next[0] = idx
	for s, l := range lens {
		order[next[l&31]] = uint16(s)
		next[l&31]++
	}
	c.sorted = order[:idx]
	// The short codes fill the direct table from its start, shortest first, each over the span
	// of entries its code prefixes; the rest of the table (prefixes of longer codes, or no code)
	// is left to Slow. The spans of a length are all alike: one loop for each.
	at, k := 0, 0
	for l := 1; l <= tbits; l++ {
		span := 1 << (tbits - l)
		syms := order[k : k+int(c.count[l])]
		k += len(syms)
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
			return int(c.sorted[int(c.index[l])+int(k)]), l
		}
	}
	return 0, 0
}
