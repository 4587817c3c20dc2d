// Package lzx decompresses the LZX variant that WIM resources and Windows' WOF (CompactOS) "LZX"
// compression use: chunks of up to 32 KiB, each an independent LZX stream with a 32 KiB window, no
// stream header, and the x86 call (E8) translation always applied with a file size of 12000000.
package lzx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/vmdkmount/vmdkmount/volumes/internal/huffman"
	"github.com/vmdkmount/vmdkmount/volumes/internal/lzcopy"
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("lzx: corrupt data")

// WindowSize is the largest chunk this decoder expands (window order 15).
const WindowSize = 1 << 15

const (
	numChars       = 256
	numOffsetSlots = 30 // for a 32 KiB window
	numMainSyms    = numChars + numOffsetSlots*8
	numLenSyms     = 249
	numPreSyms     = 20
	numAlignedSyms = 8
	minMatch       = 2
	lensSlack      = 64 // a run in a code-length list may run past the list, as encoders allow
	defaultBlock   = 32768
	e8FileSize     = 12000000

	blockVerbatim     = 1
	blockAligned      = 2
	blockUncompressed = 3
)

// slotInfo holds what the decoding loop needs of an offset slot (3 and up), in one load: the
// offset of the slot with no extra bits (its base less the 2 that repeated offsets take)<<5 | its
// number of extra bits. 32 entries: indexed by a slot masked to 5 bits (the main code has 30).
var slotInfo [32]uint32

func init() {
	base := uint32(0)
	for i := range numOffsetSlots {
		eb := 0
		if i >= 4 {
			eb = min((i-2)/2, 17)
		}
		if i >= 3 {
			slotInfo[i] = (base-2)<<5 | uint32(eb)
		}
		base += 1 << eb
	}
}

// Decoder holds the Huffman tables between chunks. It is not safe for concurrent use.
type Decoder struct {
	main, length huffman.Decoder
	aligned, pre huffman.Small
	mainLens     [numMainSyms + lensSlack]uint8
	lenLens      [numLenSyms + lensSlack]uint8
	br           bitReader
	// The state of the block being decoded that its loop uses only for matches, kept here rather
	// than in registers the literals need: the three repeated offsets, and whether the block
	// has aligned offsets.
	rep      [4]uint32 // 4: indexed by a slot masked to 2 bits
	aligned1 bool
	// The chunk's input, then zeros, which the symbol loop reads at its position masked to the
	// array: neither a bounds check nor a branch for the input's end (past which a valid stream
	// reads at most a few zero bytes; a stream that reads further fails the check after its
	// block, whatever it read).
	in [inMask + 1 + inPad]byte
	// The chunk's output, copied to the caller's buffer at the end: matches copy within it
	// without bounds checks.
	win lzcopy.Window
	out *lzcopy.Window // where the chunk being decoded goes: win or the caller's
}

const (
	inMask = 1<<16 - 1 // the largest input, less inPad: twice a chunk, of any valid stream
	inPad  = 16
)

// Decompress expands one chunk (src) into dst, whose length is the chunk's decompressed size
// (at most WindowSize). It never writes past dst.
func Decompress(dst, src []byte) error {
	return new(Decoder).Decompress(dst, src)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Decompress is the package Decompress reusing d's tables.
func (d *Decoder) Decompress(dst, src []byte) error {
	if err := d.DecompressWindow(&d.win, len(dst), src); err != nil {
		return err
	}
	copy(dst, d.win[:])
	return nil
}

// DecompressWindow expands one chunk (src) of n bytes into w[:n], decoding in w itself rather than
// in d's own window and copying out, for a caller whose chunk lies in a larger buffer. It may write
// past n: up to 7 bytes on valid input, up to a match's length more on damaged input (which then
// fails); never past w.
func (d *Decoder) DecompressWindow(w *lzcopy.Window, n int, src []byte) error {
	if n > WindowSize || n < 0 {
		return corrupt("chunk of %d bytes exceeds the %d-byte window", n, WindowSize)
	}
	d.out = w
	defer func() { d.out = nil }() // no hold on the caller's buffer from a pooled Decoder
	d.mainLens = [len(d.mainLens)]uint8{}
	d.lenLens = [len(d.lenLens)]uint8{}
	if len(src) > inMask+1-inPad {
		return corrupt("chunk of %d compressed bytes exceeds %d", len(src), inMask+1-inPad)
	}
	clear(d.in[copy(d.in[:], src):][:inPad])
	d.br = bitReader{src: src}
	br := &d.br
	r0, r1, r2 := uint32(1), uint32(1), uint32(1)
	out := 0
	for out < n {
		typ := br.read(3)
		size := defaultBlock
		if br.read(1) == 0 {
			size = int(br.read(16))
		}
		if size == 0 {
			return corrupt("empty block at output byte %d", out)
		}
		end := out + min(size, n-out)
		switch typ {
		case blockAligned:
			var al [numAlignedSyms]uint8
			for i := range al {
				al[i] = uint8(br.read(3))
			}
			if err := d.aligned.Init(al[:]); err != nil {
				return corrupt("aligned offset code: %v", err)
			}
			fallthrough
		case blockVerbatim:
			if err := d.readLens(d.mainLens[:], 0, numChars); err != nil {
				return err
			}
			if err := d.readLens(d.mainLens[:], numChars, numMainSyms); err != nil {
				return err
			}
			if err := d.main.Init(d.mainLens[:numMainSyms]); err != nil {
				return corrupt("main code: %v", err)
			}
			if err := d.readLens(d.lenLens[:], 0, numLenSyms); err != nil {
				return err
			}
			if err := d.length.Init(d.lenLens[:numLenSyms]); err != nil {
				return corrupt("length code: %v", err)
			}
			var err error
			d.rep = [4]uint32{r0, r1, r2}
			out, err = d.block(end, out, typ == blockAligned)
			r0, r1, r2 = d.rep[0], d.rep[1], d.rep[2]
			if err != nil {
				return err
			}
		case blockUncompressed:
			at := br.align()
			if at+12 > len(src) {
				return corrupt("uncompressed block header past the input")
			}
			r0 = binary.LittleEndian.Uint32(src[at:])
			r1 = binary.LittleEndian.Uint32(src[at+4:])
			r2 = binary.LittleEndian.Uint32(src[at+8:])
			at += 12
			if at+end-out > len(src) {
				return corrupt("uncompressed block of %d bytes past the input", end-out)
			}
			copy(w[out:end], src[at:at+end-out])
			at += end - out + size&1
			out = end // odd blocks are padded back to a 16-bit boundary
			*br = bitReader{src: src, pos: at}
		default:
			return corrupt("block type %d at output byte %d", typ, out)
		}
		if br.pos > len(src)+8 {
			return corrupt("input of %d bytes ends before the output is complete", len(src))
		}
	}
	undoE8(w, n)
	return nil
}

// block decodes the symbols of a verbatim or aligned block into d.out[out:end]. The bit reader's
// state lives in local variables while it runs, so that the loop keeps it in registers: each
// symbol takes at most 49 bits (main and length codes of 16, then up to 17 for the offset), read
// after two refills of 32.
func (d *Decoder) block(end, out int, aligned bool) (int, error) {
	pos, buf, nb := d.br.pos, d.br.buf, d.br.n
	w := d.out
	dst := w[:end]
	d.aligned1 = aligned
	// A damaged stream leaves the loop with what is wrong in bad (and the match's offset in
	// badOff); the error is made after it, so that the loop makes no call on any path, which
	// would make it keep its state in memory.
	const (
		badMain = iota + 1
		badLength
		badAligned
		badOffset
		badOverrun
	)
	var bad int
	var badOff uint32
loop:
	for {
		// Literals in a loop of their own, which the compiler keeps tight; it checks the end
		// of the output for the loop of matches too.
		var e uint32
		for {
			if uint(out) >= uint(len(dst)) { // unsigned: lets the compiler drop dst[out]'s bounds check
				break loop
			}
			if nb < 32 {
				p := pos & inMask
				w := bits.RotateLeft32(binary.LittleEndian.Uint32(d.in[p:p+4]), 16) // the first word first
				buf |= uint64(w) << ((32 - nb) & 63)
				pos, nb = pos+4, nb+32
			}
			e = d.main.Top(buf)
			if e >= numChars<<5 { // not a literal with a short code (huffman.Further is above)
				break
			}
			buf, nb = huffman.Drop(buf, nb, e)
			dst[out] = byte(e >> 5)
			out++
			// A second symbol without a refill: 16 bits are left of the 32.
			if uint(out) >= uint(len(dst)) {
				break loop
			}
			e = d.main.Top(buf)
			if e >= numChars<<5 {
				break
			}
			buf, nb = huffman.Drop(buf, nb, e)
			dst[out] = byte(e >> 5)
			out++
		}
		n := int(e & 31)
		if n == 0 {
			sym, sn := d.main.Slow(uint32(buf >> 48))
			if sn == 0 {
				bad = badMain
				break loop
			}
			e, n = uint32(sym<<5|sn), sn
		}
		buf <<= n & 63
		nb -= n
		if e < numChars<<5 { // a literal with a long code
			dst[out] = byte(e >> 5)
			out++
			continue
		}
		sym := int(e>>5) - numChars
		length := sym&7 + minMatch
		if sym&7 == 7 {
			if nb < 16 { // after a main code read without a refill
				p := pos & inMask
				w := bits.RotateLeft32(binary.LittleEndian.Uint32(d.in[p:p+4]), 16)
				buf |= uint64(w) << ((32 - nb) & 63)
				pos, nb = pos+4, nb+32
			}
			e := d.length.Top(buf)
			ls, n := int(e>>5), int(e&31)
			if n == 0 {
				if ls, n = d.length.Slow(uint32(buf >> 48)); n == 0 {
					bad = badLength
					break loop
				}
			}
			buf <<= n & 63
			nb -= n
			length += ls
		}
		var offset uint32
		if slot := sym >> 3; slot < 3 {
			// A repeated offset swaps with the first (slot 0 with itself): one branch for
			// the three, whose choice the processor cannot predict.
			offset = d.rep[slot&3]
			d.rep[slot&3] = d.rep[0]
			d.rep[0] = offset
		} else {
			if nb < 17 {
				p := pos & inMask
				w := bits.RotateLeft32(binary.LittleEndian.Uint32(d.in[p:p+4]), 16)
				buf |= uint64(w) << ((32 - nb) & 63)
				pos, nb = pos+4, nb+32
			}
			t := slotInfo[slot&31]
			eb, v := int(t&31), t>>5
			if d.aligned1 && eb >= 3 {
				v += uint32(buf>>1>>((66-eb)&63)) << 3 // 0 bits for eb 3
				buf <<= (eb - 3) & 63
				nb -= eb - 3
				a := d.aligned.Top(buf) // codes of at most 7 bits: all in the direct table
				n := int(a & 31)
				if n == 0 {
					bad = badAligned
					break loop
				}
				buf <<= n & 63
				nb -= n
				v += uint32(a >> 5)
			} else {
				v += uint32(buf >> 1 >> ((63 - eb) & 63)) // 0 bits for eb 0
				buf <<= eb & 63
				nb -= eb
			}
			offset = v
			d.rep[0], d.rep[1], d.rep[2] = offset, d.rep[0], d.rep[1]
		}
		if uint(offset)-1 >= uint(out) { // offset 0 (from an uncompressed block's header) wraps
			bad, badOff = badOffset, offset
			break loop
		}
		// A match past the block's end is caught when the loop ends: the window has room for
		// the longest match past the longest block.
		w.Match(out, int(offset), length)
		out += length
	}
	if bad == 0 && out > len(dst) {
		bad = badOverrun
	}
	d.br = bitReader{src: d.br.src, pos: pos, buf: buf, n: nb}
	switch bad {
	case badMain:
		return out, corrupt("no main code matches the input at output byte %d", out)
	case badLength:
		return out, corrupt("no length code matches the input at output byte %d", out)
	case badAligned:
		return out, corrupt("no aligned code matches the input at output byte %d", out)
	case badOffset:
		return out, corrupt("match at output byte %d reaches %d bytes back", out, badOff)
	case badOverrun:
		return out, corrupt("a match overruns its block, which ends at output byte %d", len(dst))
	}
	return out, nil
}

// readLens reads the code lengths lens[from:to] through a pretree, as deltas against their
// previous values. A run may write up to lensSlack entries past to. Like block, it keeps the bit
// reader's state in local variables, and reads the input from d.in: one refill to 32 bits covers
// each step, a pretree code of at most 15 bits and a run length of up to 5.
func (d *Decoder) readLens(lens []uint8, from, to int) error {
	br := &d.br
	var pl [numPreSyms]uint8
	for i := range pl {
		pl[i] = uint8(br.read(4))
	}
	if err := d.pre.Init(pl[:]); err != nil {
		return corrupt("pretree: %v", err)
	}
	pos, buf, nb := br.pos, br.buf, br.n
	bad := false
	// A run of symbol 19 takes its value from the next code: run19 is its length until then.
	run19 := 0
	i := from
	for i < to {
		if nb < 32 {
			p := pos & inMask
			w := bits.RotateLeft32(binary.LittleEndian.Uint32(d.in[p:p+4]), 16)
			buf |= uint64(w) << ((32 - nb) & 63)
			pos, nb = pos+4, nb+32
		}
		e := d.pre.Top(buf)
		n := int(e & 31)
		if n == 0 {
			s, sn := d.pre.Slow(uint32(buf >> 48))
			if sn == 0 {
				bad = true
				break
			}
			e, n = uint32(s<<5), sn
		}
		buf <<= n & 63
		nb -= n
		s := e >> 5
		if s < 17 {
			v := delta(lens[i], s)
			if run19 == 0 {
				lens[i] = v
				i++
				continue
			}
			if i+run19 > len(lens) {
				break
			}
			for k := range run19 {
				lens[i+k] = v
			}
			i, run19 = i+run19, 0
			continue
		}
		if run19 != 0 {
			br.pos, br.buf, br.n = pos, buf, nb
			return corrupt("pretree symbol %d inside a run", s)
		}
		run := 0
		switch s {
		case 17:
			run = 4 + int(buf>>60)
			buf <<= 4
			nb -= 4
		case 18:
			run = 20 + int(buf>>59)
			buf <<= 5
			nb -= 5
		default:
			run19 = 4 + int(buf>>63)
			buf <<= 1
			nb--
			continue
		}
		if i+run > len(lens) {
			break
		}
		for k := 0; k < run; k++ { // a loop, not clear: runs are short
			lens[i+k] = 0
		}
		i += run
	}
	br.pos, br.buf, br.n = pos, buf, nb
	switch {
	case bad:
		return corrupt("no pretree code matches the input")
	case run19 != 0 || i < to:
		return corrupt("code length run past the table")
	case pos > len(br.src)+8:
		return corrupt("input of %d bytes ends inside the code lengths", len(br.src))
	}
	return nil
}

// delta is a code length l (0 to 16) less the pretree's delta s (0 to 16), modulo 17, without
// a division.
func delta(l uint8, s uint32) uint8 {
	v := int(l) - int(s)
	if v < 0 {
		v += 17
	}
	return uint8(v)
}

// undoE8 turns the absolute targets the compressor wrote into x86 CALL (E8) instructions back
// into relative ones, in the chunk w[:n]. Its last 10 bytes are never translated.
func undoE8(w *lzcopy.Window, n int) {
	for i, end := 0, n-10; i < end; i += 5 {
		k := bytes.IndexByte(w[i:end], 0xE8)
		if k < 0 {
			return
		}
		i += k
		p := (i + 1) & (lzcopy.WindowSize - 1) // i+1 itself: masked for the bounds check
		abs := int32(binary.LittleEndian.Uint32(w[p:]))
		switch {
		case uint32(abs) < e8FileSize: // 0 <= abs < e8FileSize
			binary.LittleEndian.PutUint32(w[p:], uint32(abs-int32(i)))
		case uint32(abs+int32(i)) < uint32(i): // -i <= abs < 0
			binary.LittleEndian.PutUint32(w[p:], uint32(abs+e8FileSize))
		}
	}
}

// bitReader reads LZX's stream of 16-bit little-endian words, most significant bit first. Past the
// end it reads zeros; the caller bounds how far.
type bitReader struct {
	src []byte
	pos int    // next byte to load
	buf uint64 // unread bits, left-aligned
	n   int    // number of unread bits in buf
}

func (b *bitReader) fill() {
	for b.n <= 48 {
		var w uint64
		if b.pos+2 <= len(b.src) {
			w = uint64(binary.LittleEndian.Uint16(b.src[b.pos:]))
		}
		b.pos += 2
		b.buf |= w << (48 - b.n)
		b.n += 16
	}
}

func (b *bitReader) consume(n int) {
	b.buf <<= n
	b.n -= n
}

// read returns the next n (≤ 16) bits.
func (b *bitReader) read(n int) uint32 {
	if n == 0 {
		return 0
	}
	if b.n < n {
		b.fill()
	}
	v := uint32(b.buf >> (64 - n))
	b.consume(n)
	return v
}

// align drops the rest of a partly read word and returns the input position of the next unread
// byte.
func (b *bitReader) align() int {
	b.consume(b.n % 16)
	at := b.pos - b.n/8
	*b = bitReader{src: b.src, pos: at}
	return at
}
