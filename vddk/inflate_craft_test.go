package vddk

import (
	"bytes"
	"errors"
	"math/bits"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
)

// Hand-made streams for the code-length rules and block checks, each decoded by compress/flate as
// the reference (the writer below only makes the input; it is not the judge).

type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

// code writes a Huffman code (sent most significant bit first).
func (w *bitWriter) code(c uint16, n uint8) {
	w.bits(uint64(bits.Reverse16(c)>>(16-n)), uint(n))
}

func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
	return w.out
}

// canonical assigns canonical Huffman codes to code lengths (RFC 1951 3.2.2).
func canonical(lens []uint8) []uint16 {
	var count [16]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]uint16
	code := uint16(0)
	for l := 1; l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	codes := make([]uint16, len(lens))
	for i, l := range lens {
		if l != 0 {
			codes[i] = next[l]
			next[l]++
		}
	}
	return codes
}

// dynamicBlock is a final dynamic block: its code lengths sent with a precode of sixteen 4-bit codes
// (for lengths 0-15) unless pre is given, then body writes the symbols.
type dynamicBlock struct {
	lit, dist []uint8
	pre       []uint8  // precode lengths by symbol 0-18
	preSyms   []uint16 // code-length symbols to send instead of lit+dist (with their extra bits)
	body      func(w *bitWriter, lit, dist []uint16, litLen, distLen []uint8)
}

func (b dynamicBlock) encode() []byte {
	var w bitWriter
	w.bits(1, 1) // BFINAL
	w.bits(2, 2) // dynamic
	w.bits(uint64(len(b.lit)-257), 5)
	w.bits(uint64(len(b.dist)-1), 5)
	pre := b.pre
	if pre == nil {
		pre = make([]uint8, 19)
		for i := range 16 {
			pre[i] = 4
		}
	}
	w.bits(19-4, 4)
	for _, s := range deflate.CodeLengthOrder {
		w.bits(uint64(pre[s]), 3)
	}
	pc := canonical(pre)
	if b.preSyms != nil {
		for i := 0; i < len(b.preSyms); i++ {
			s := b.preSyms[i]
			w.code(pc[s], pre[s])
			switch s {
			case 16:
				i++
				w.bits(uint64(b.preSyms[i]), 2)
			case 17:
				i++
				w.bits(uint64(b.preSyms[i]), 3)
			case 18:
				i++
				w.bits(uint64(b.preSyms[i]), 7)
			}
		}
	} else {
		for _, l := range append(append([]uint8{}, b.lit...), b.dist...) {
			w.code(pc[l], pre[l])
		}
	}
	lc, dc := canonical(b.lit), canonical(b.dist)
	if b.body != nil {
		b.body(&w, lc, dc, b.lit, b.dist)
	}
	return w.bytes()
}

type craftedStream struct {
	name    string
	stream  []byte
	wantErr string // inflateRaw's error, "" when both readers succeed
}

func craftedStreams() []craftedStream {
	// A literal/length code: literals 'a' and 'b', end-of-block and length 3 (symbol 257), all 2 bits.
	abLit := make([]uint8, 258)
	abLit['a'], abLit['b'], abLit[256], abLit[257] = 2, 2, 2, 2
	eob := func(w *bitWriter, lc, dc []uint16, ll, dl []uint8) { w.code(lc[256], ll[256]) }
	abThenMatch := func(dist int) func(w *bitWriter, lc, dc []uint16, ll, dl []uint8) {
		return func(w *bitWriter, lc, dc []uint16, ll, dl []uint8) {
			w.code(lc['a'], ll['a'])
			w.code(lc['b'], ll['b'])
			w.code(lc[257], ll[257]) // length 3
			w.code(dc[dist], dl[dist])
			w.code(lc[256], ll[256])
		}
	}
	onlyEOB := make([]uint8, 257)
	onlyEOB[256] = 1
	overLit := bytes.Clone(abLit)
	overLit['c'] = 2 // five 2-bit codes
	incompleteLit := bytes.Clone(abLit)
	incompleteLit['b'] = 0 // three 2-bit codes
	noEOB := make([]uint8, 258)
	noEOB['a'], noEOB['b'], noEOB['c'], noEOB['d'] = 2, 2, 2, 2
	twoDist := []uint8{1, 1}
	repeatFirst := make([]uint8, 19)
	repeatFirst[16], repeatFirst[2] = 1, 1

	return []craftedStream{
		{"only end-of-block, a one-bit code", dynamicBlock{lit: onlyEOB, dist: []uint8{0}, body: eob}.encode(), ""},
		{"no distance codes", dynamicBlock{lit: abLit, dist: []uint8{0}, body: func(w *bitWriter, lc, dc []uint16, ll, dl []uint8) {
			w.code(lc['b'], 2)
			w.code(lc['a'], 2)
			w.code(lc[256], 2)
		}}.encode(), ""},
		{"one distance code of one bit", dynamicBlock{lit: abLit, dist: []uint8{0, 1}, body: abThenMatch(1)}.encode(), ""},
		{"two distance codes, match two back", dynamicBlock{lit: abLit, dist: twoDist, body: abThenMatch(1)}.encode(), ""},
		{"distance too far back", dynamicBlock{lit: abLit, dist: []uint8{0, 0, 0, 0, 0, 1}, body: abThenMatch(5)}.encode(), "too far back"},
		{"unused distance code half", dynamicBlock{lit: abLit, dist: []uint8{0, 1}, body: func(w *bitWriter, lc, dc []uint16, ll, dl []uint8) {
			w.code(lc['a'], 2)
			w.code(lc[257], 2)
			w.bits(1, 1) // the one-bit code that has no symbol
			w.code(lc[256], 2)
		}}.encode(), "invalid distance code"},
		{"over-subscribed literal/length code", dynamicBlock{lit: overLit, dist: []uint8{1, 1}, body: eob}.encode(), "over-subscribed"},
		{"incomplete literal/length code", dynamicBlock{lit: incompleteLit, dist: []uint8{1, 1}, body: eob}.encode(), "incomplete"},
		{"incomplete distance code of two bits", dynamicBlock{lit: abLit, dist: []uint8{2}, body: eob}.encode(), "incomplete"},
		{"no end-of-block code", dynamicBlock{lit: noEOB, dist: []uint8{1, 1}, body: func(w *bitWriter, lc, dc []uint16, ll, dl []uint8) {
			w.code(lc['a'], 2)
		}}.encode(), "end-of-block"},
		{"repeat with no previous length", dynamicBlock{lit: abLit, dist: []uint8{1, 1}, pre: repeatFirst, preSyms: []uint16{16, 0}}.encode(), "no previous"},
		{"too many distance codes", dynamicBlock{lit: abLit, dist: make([]uint8, 31)}.encode(), "too many"},
		{"too many literal/length codes", dynamicBlock{lit: make([]uint8, 287), dist: []uint8{1, 1}}.encode(), "too many"},
		{"block type 3", []byte{0x07}, "block type"},
		{"stored length mismatch", []byte{0x01, 0x05, 0x00, 0xfa, 0xfe, 1, 2, 3, 4, 5}, "does not match"},
		{"stored block", []byte{0x01, 0x05, 0x00, 0xfa, 0xff, 1, 2, 3, 4, 5, 0xaa}, ""},
		{"fixed block using literal/length code 286", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(1, 2)
			w.code(0xc6, 8) // 286: fixed codes 280-287 are 11000000 + (sym-280)
			return w.bytes()
		}(), "invalid literal/length code"},
		{"fixed block using distance code 30", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(1, 2)
			w.code(0x30+'x', 8) // literal 'x'
			w.code(1, 7)        // 257: length 3
			w.code(30, 5)
			return w.bytes()
		}(), "invalid distance code"},
	}
}

func TestInflateRawCraftedStreams(t *testing.T) {
	for _, c := range craftedStreams() {
		want, wantUsed, stdErr := stdInflate(c.stream, 1<<10)
		dst := make([]byte, 1<<10)
		n, used, err := deflate.InflateRaw(dst, c.stream)
		if c.wantErr == "" {
			if stdErr != nil || err != nil || !bytes.Equal(dst[:n], want) || used != wantUsed {
				t.Errorf("%s: inflateRaw %q used %d (%v); compress/flate %q used %d (%v)", c.name, dst[:n], used, err, want, wantUsed, stdErr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: inflateRaw error %v, want one about %q", c.name, err, c.wantErr)
		}
		// compress/flate refuses these too; a stream missing its end-of-block code it cannot
		// finish, so it ends with the input instead.
		if stdErr == nil {
			t.Errorf("%s: compress/flate accepts it: %q", c.name, want)
		}
		if errors.Is(err, deflate.ErrTruncated) {
			t.Errorf("%s: reported as truncated: %v", c.name, err)
		}
	}
}
