// Package deflate decodes whole raw DEFLATE streams (RFC 1951) straight into a buffer of known size:
// VMDK stream grains and qcow2 zlib clusters.
package deflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// A whole-buffer raw DEFLATE (RFC 1951) decoder for compressed grains. The compressed grain is already
// in memory and its inflated size is known, so decoding goes straight into the destination: no sliding
// window, no io.Reader, and no copy out of a window (a streaming reader spent as long copying as
// decoding). Huffman codes are decoded by table: a primary table indexed by the next few input bits,
// with subtables for the rare longer codes.

const (
	litRootBits  = 11 // primary table bits for literal/length codes
	distRootBits = 8  // primary table bits for distance codes
	preRootBits  = 7  // code-length codes are at most 7 bits: one table, no subtables
	maxCodeBits  = 15
	// Table sizes: the primary table plus the most subtable space any complete code can need (the
	// bounds zlib's "enough" program computes for 288 symbols over 11 root bits and for 32 symbols over
	// 8 root bits, with codes of at most 15 bits). buildTable checks them anyway.
	litTableSize  = 2342
	distTableSize = 402
	maxLitCodes   = 286 // literal/length codes a dynamic block may define
	maxDistCodes  = 30
	endOfBlock    = 256
	fastRoom      = 258 + 16 // output room the fast loop needs: a longest match and its overrun
)

// A table entry: bits 0-4 are the input bits it consumes (code and extra bits, so one shift takes
// both; bit 5 stays clear so that a shift by e&63 needs no masking instruction); bits 8-11 the code's
// own length (the extra bits follow it) or, for a subtable link, the subtable's index bits; bits 12-15
// its kind; bits 16-31 its value (literal byte, base length, base distance, code length or subtable
// offset). Lengths and distances carry no kind flag.
const (
	entLiteral = 1 << 15
	entEnd     = 1 << 14
	entSub     = 1 << 13
	entInvalid = 1 << 12
)

// Lengths 3-258 (symbols 257-285) and distances 1-32768 (symbols 0-29): base values and extra bits,
// RFC 1951 section 3.2.5.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// For a match distance d < 8: the multiplier that repeats a d-byte pattern through a word, and
	// the largest multiple of d that is at most 8.
	patternRepeat = [8]uint64{0, 0x0101010101010101, 0x0001000100010001, 1 | 1<<24 | 1<<48, 1 | 1<<32, 1 | 1<<40, 1 | 1<<48, 1 | 1<<56}
	patternStep   = [8]uint8{0, 8, 8, 6, 8, 5, 6, 7}
	// The order in which a dynamic block lists the code-length code's lengths.
	CodeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var (
	ErrTruncated     = errors.New("deflate: input ends inside the stream")
	errBlockType     = errors.New("deflate: invalid block type 3")
	errStoredLength  = errors.New("deflate: stored block length does not match its complement")
	errTooManyCodes  = errors.New("deflate: too many literal/length or distance codes")
	errRepeatNothing = errors.New("deflate: code length repeat with no previous length")
	errRepeatTooLong = errors.New("deflate: code length repeat runs past the last code")
	errNoEndOfBlock  = errors.New("deflate: literal/length code has no end-of-block code")
	errOverSubscribe = errors.New("deflate: invalid code lengths: over-subscribed code")
	errIncomplete    = errors.New("deflate: invalid code lengths: incomplete code")
	errTableTooLarge = errors.New("deflate: invalid code lengths: decoding table too large")
	errLitLenCode    = errors.New("deflate: invalid literal/length code")
	errDistCode      = errors.New("deflate: invalid distance code")
	errCodeLenCode   = errors.New("deflate: invalid code-length code")
	errDistTooFar    = errors.New("deflate: distance too far back")
)

// OutputLimitError is a stream whose output would pass the end of the destination.
type OutputLimitError int

func (e OutputLimitError) Error() string {
	return fmt.Sprintf("deflate: output larger than %d bytes", int(e))
}

// inflater holds the decoding tables of one stream; it is pooled, as the tables are about 11 KiB.
type inflater struct {
	br     bitReader
	lit    [litTableSize]uint32
	dist   [distTableSize]uint32
	pre    [1 << preRootBits]uint32
	lens   [maxLitCodes + maxDistCodes]uint8
	sorted [288]uint16
}

var inflaterPool = sync.Pool{New: func() any { return new(inflater) }}

// Fixed Huffman tables (block type 1), built once.
var (
	fixedOnce sync.Once
	fixedLit  [litTableSize]uint32
	fixedDist [distTableSize]uint32
)

func buildFixedTables() {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	var sorted [288]uint16
	if err := buildTable(fixedLit[:], litRootBits, lens[:], sorted[:], tableLitLen); err != nil {
		panic("deflate: fixed literal/length table: " + err.Error())
	}
	for i := range 32 {
		lens[i] = 5
	}
	if err := buildTable(fixedDist[:], distRootBits, lens[:32], sorted[:], tableDist); err != nil {
		panic("deflate: fixed distance table: " + err.Error())
	}
}

// InflateRaw decodes the raw DEFLATE stream at the start of src into dst. It returns the bytes written
// and the bytes of src the stream occupies (to its final block's last byte), so whatever follows, such
// as a zlib checksum, starts at src[used:]. Output that would not fit in dst is an OutputLimitError
// (with n == len(dst) when the stream had more to give). dst past the returned n may be overwritten.
func InflateRaw(dst, src []byte) (n int, used int, err error) {
	fixedOnce.Do(buildFixedTables)
	f := inflaterPool.Get().(*inflater)
	defer inflaterPool.Put(f)
	f.br = bitReader{src: src}
	n, err = f.inflate(dst)
	if err != nil {
		if f.br.overrun() {
			err = ErrTruncated
		}
		return n, 0, err
	}
	if f.br.overrun() {
		return n, 0, ErrTruncated
	}
	return n, f.br.end(), nil
}

func (f *inflater) inflate(dst []byte) (int, error) {
	br := &f.br
	o := 0
	for {
		if err := br.refill(); err != nil {
			return o, err
		}
		hdr := br.take(3)
		var err error
		switch hdr >> 1 {
		case 0:
			o, err = f.stored(dst, o)
		case 1:
			o, err = f.huffman(dst, o, &fixedLit, &fixedDist)
		case 2:
			if err = f.readDynamicTables(); err == nil {
				o, err = f.huffman(dst, o, &f.lit, &f.dist)
			}
		default:
			err = errBlockType
		}
		if err != nil {
			return o, err
		}
		if hdr&1 != 0 {
			return o, nil
		}
	}
}

// stored copies a stored block, which starts at the next byte boundary.
func (f *inflater) stored(dst []byte, o int) (int, error) {
	br := &f.br
	in, err := br.align()
	if err != nil {
		return o, err
	}
	src := br.src
	if len(src)-in < 4 {
		br.in = len(src) + 1 // cut inside the header
		return o, ErrTruncated
	}
	size := int(binary.LittleEndian.Uint16(src[in:]))
	if uint16(size) != ^binary.LittleEndian.Uint16(src[in+2:]) {
		return o, errStoredLength
	}
	in += 4
	k := min(size, len(src)-in, len(dst)-o)
	copy(dst[o:o+k], src[in:in+k])
	in += k
	o += k
	br.in = in
	if k < size {
		if in == len(src) {
			br.in++ // the missing bytes were needed
			return o, ErrTruncated
		}
		return o, OutputLimitError(len(dst))
	}
	return o, nil
}

// readDynamicTables reads a dynamic block's code lengths and builds its tables.
func (f *inflater) readDynamicTables() error {
	br := &f.br
	if err := br.refill(); err != nil {
		return err
	}
	nlit := int(br.take(5)) + 257
	ndist := int(br.take(5)) + 1
	nclen := int(br.take(4)) + 4
	if nlit > maxLitCodes || ndist > maxDistCodes {
		return errTooManyCodes
	}
	var clens [19]uint8
	for i := range nclen {
		if err := br.refill(); err != nil {
			return err
		}
		clens[CodeLengthOrder[i]] = uint8(br.take(3))
	}
	if err := buildTable(f.pre[:], preRootBits, clens[:], f.sorted[:], tableCodeLen); err != nil {
		return err
	}
	lens := f.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if err := br.refill(); err != nil {
			return err
		}
		e := f.pre[br.buf&(1<<preRootBits-1)]
		if e&entInvalid != 0 {
			return errCodeLenCode
		}
		br.take(uint(e & 31))
		sym := uint8(e >> 16)
		if sym < 16 {
			lens[i] = sym
			i++
			continue
		}
		var val uint8
		var run int
		switch sym {
		case 16:
			if i == 0 {
				return errRepeatNothing
			}
			val, run = lens[i-1], 3+int(br.take(2))
		case 17:
			run = 3 + int(br.take(3))
		default:
			run = 11 + int(br.take(7))
		}
		if run > len(lens)-i {
			return errRepeatTooLong
		}
		for k := range run {
			lens[i+k] = val
		}
		i += run
	}
	if br.overrun() {
		return ErrTruncated
	}
	if lens[endOfBlock] == 0 {
		return errNoEndOfBlock
	}
	if err := buildTable(f.lit[:], litRootBits, lens[:nlit], f.sorted[:], tableLitLen); err != nil {
		return err
	}
	return buildTable(f.dist[:], distRootBits, lens[nlit:], f.sorted[:], tableDist)
}

const (
	tableLitLen = iota
	tableDist
	tableCodeLen
)

// symbolEntry is a symbol's table entry without its bit counts, and the extra bits after its code.
func symbolEntry(kind, sym int) (uint32, uint32) {
	switch kind {
	case tableLitLen:
		switch {
		case sym < 256:
			return entLiteral | uint32(sym)<<16, 0
		case sym == endOfBlock:
			return entEnd, 0
		case sym < 286:
			return uint32(lengthBase[sym-257]) << 16, uint32(lengthExtra[sym-257])
		}
	case tableDist:
		if sym < 30 {
			return uint32(distBase[sym]) << 16, uint32(distExtra[sym])
		}
	default:
		return uint32(sym) << 16, 0
	}
	return entInvalid, 0 // literal/length 286-287 and distances 30-31 exist only in the fixed code
}

// buildTable fills table (primary table of rootBits, then subtables) for the canonical Huffman code
// with the given code lengths. Like zlib it refuses over-subscribed codes, and incomplete ones except a
// distance code with no codes at all or a single one-bit code (a literal/length code may also be a
// single one-bit code: its end-of-block).
func buildTable(table []uint32, rootBits uint, lens []uint8, sorted []uint16, kind int) error {
	var count [maxCodeBits + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left, codes, maxLen := 1, 0, 0
	for l := 1; l <= maxCodeBits; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return errOverSubscribe
		}
		if count[l] > 0 {
			codes += count[l]
			maxLen = l
		}
	}
	size := 1 << rootBits
	if left > 0 {
		single := codes == 1 && count[1] == 1 && kind != tableCodeLen
		if !single && !(codes == 0 && kind == tableDist) {
			return errIncomplete
		}
	}
	// Symbols sorted by code length, then by value: the canonical code order.
	var offs [maxCodeBits + 2]int
	for l := 1; l <= maxCodeBits; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	for sym, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(sym)
			offs[l]++
		}
	}
	// The primary table is filled a length at a time: codes of length l go to table[:1<<l], which is
	// then copied to double it, as an entry at i also serves i+(1<<l). Slots no code reaches (only in
	// the incomplete codes allowed above) stay invalid.
	filled := 2
	table[0], table[1] = entInvalid, entInvalid
	grow := func(n int) {
		for filled < n {
			copy(table[filled:2*filled], table[:filled])
			filled *= 2
		}
	}
	remaining := count
	end := size // next free subtable slot
	subPrefix, subStart, subBits := -1, 0, 0
	code, idx := 0, 0
	for l := 1; l <= maxLen; l++ {
		grow(1 << min(uint(l), rootBits))
		for range count[l] {
			ent, extra := symbolEntry(kind, int(sorted[idx]))
			idx++
			// Deflate sends codes most significant bit first; the bit buffer is read from its low end.
			rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
			if uint(l) <= rootBits {
				table[rev] = ent | uint32(l)<<8 | (uint32(l) + extra)
			} else {
				if prefix := rev & (size - 1); prefix != subPrefix {
					// The subtable must hold every remaining code with this prefix: grow it until the
					// codes of this length and longer fill it.
					sb := l - int(rootBits)
					free := 1 << sb
					for sb+int(rootBits) < maxLen {
						free -= remaining[sb+int(rootBits)]
						if free <= 0 {
							break
						}
						sb++
						free <<= 1
					}
					if end+1<<sb > len(table) {
						return errTableTooLarge
					}
					table[prefix] = entSub | uint32(end)<<16 | uint32(sb)<<8 | uint32(rootBits)
					subPrefix, subStart, subBits = prefix, end, sb
					end += 1 << sb
				}
				ent |= uint32(l-int(rootBits))<<8 | (uint32(l-int(rootBits)) + extra)
				for i := rev >> rootBits; i < 1<<subBits; i += 1 << (l - int(rootBits)) {
					table[subStart+i] = ent
				}
			}
			remaining[l]--
			code++
		}
		code <<= 1
	}
	grow(size)
	return nil
}

// huffman decodes one Huffman-coded block into dst from o; it returns the new output position.
func (f *inflater) huffman(dst []byte, o int, lt *[litTableSize]uint32, dt *[distTableSize]uint32) (int, error) {
	br := &f.br
	src := br.src
	buf, nb, in := br.buf, br.nb, br.in
	// pad counts the bits of padding (zero bytes loaded past the end of src) in buf: a symbol that
	// leaves fewer than pad bits unused has read past the end of the input.
	pad := uint(0)
	var err error
	// Fast loop, while at least 8 input bytes lie ahead (no padding) and dst has room for the longest
	// match with its word-copy overrun: no per-symbol checks of either end.
	for in+8 <= len(src) && o <= len(dst)-fastRoom {
		buf |= binary.LittleEndian.Uint64(src[in:]) << (nb & 63)
		in += int(63-nb) >> 3
		nb |= 56
		e := lt[buf&(1<<litRootBits-1)]
		if e&entLiteral != 0 {
			// A run of literals, while the buffer holds a longest code (at most 56 of them, well
			// within fastRoom).
			for {
				buf >>= e & 63
				nb -= uint(e & 31)
				dst[o] = byte(e >> 16)
				o++
				e = lt[buf&(1<<litRootBits-1)]
				if e&entLiteral == 0 || nb < maxCodeBits {
					break
				}
			}
			continue
		}
		if e&entSub != 0 {
			buf >>= litRootBits
			nb -= litRootBits
			e = lt[int(e>>16)+int(buf&(1<<((e>>8)&15)-1))]
			if e&entLiteral != 0 {
				buf >>= e & 63
				nb -= uint(e & 31)
				dst[o] = byte(e >> 16)
				o++
				continue
			}
			if e&(entEnd|entInvalid) != 0 {
				buf >>= e & 63
				nb -= uint(e & 31)
				if e&entInvalid != 0 {
					err = errLitLenCode
				}
				br.buf, br.nb, br.in = buf, nb, in
				return o, err
			}
		} else if e&(entEnd|entInvalid) != 0 {
			break // nothing consumed: the careful loop takes it from here
		}
		length := int(e>>16) + int(buf&(1<<(e&31)-1)>>((e>>8)&15))
		buf >>= e & 63
		nb -= uint(e & 31)
		e = dt[buf&(1<<distRootBits-1)]
		if e&entSub != 0 {
			buf >>= distRootBits
			nb -= distRootBits
			e = dt[int(e>>16)+int(buf&(1<<((e>>8)&15)-1))]
		}
		dist := int(e>>16) + int(buf&(1<<(e&31)-1)>>((e>>8)&15))
		buf >>= e & 63
		nb -= uint(e & 31)
		if e&entInvalid != 0 {
			err = errDistCode
			break
		}
		if dist > o {
			err = errDistTooFar
			break
		}
		from := o - dist
		if dist < 8 {
			// A repeating pattern of dist bytes: build one word of it and store that word every
			// whole number of periods (5 to 8 bytes), with no loads from the output.
			p := binary.LittleEndian.Uint64(dst[from:]) & (1<<(8*dist) - 1)
			w := p * patternRepeat[dist]
			step := int(patternStep[dist])
			for k := 0; k < length; k += step {
				binary.LittleEndian.PutUint64(dst[o+k:], w)
			}
			o += length
			continue
		}
		if dist+16 < length {
			// Overlapping its source by more than two words: words would keep loading what the
			// previous few words just stored, unaligned, which stalls the CPU; copy whole periods
			// instead, doubling each time.
			end := o + length
			for o < end {
				o += copy(dst[o:end], dst[from:o])
			}
			continue
		}
		// Whole words, each reading bytes already written (dist >= 8); the last may write up to 15
		// bytes past the match, which later output overwrites.
		binary.LittleEndian.PutUint64(dst[o:], binary.LittleEndian.Uint64(dst[from:]))
		binary.LittleEndian.PutUint64(dst[o+8:], binary.LittleEndian.Uint64(dst[from+8:]))
		for k := 16; k < length; k += 8 {
			binary.LittleEndian.PutUint64(dst[o+k:], binary.LittleEndian.Uint64(dst[from+k:]))
		}
		o += length
	}
	if err != nil {
		br.buf, br.nb, br.in = buf, nb, in
		return o, err
	}
	// Careful loop, near either end.
	for {
		// Refill to at least 56 bits: enough for a length code, its extra bits, a distance code and its
		// extra bits (15+5+15+13).
		if in+8 <= len(src) {
			buf |= binary.LittleEndian.Uint64(src[in:]) << (nb & 63)
			in += int(63-nb) >> 3
			nb |= 56
		} else {
			br.buf, br.nb, br.in = buf, nb, in
			if err = br.refillSlow(); err != nil {
				return o, err
			}
			buf, nb, in = br.buf, br.nb, br.in
			pad = uint(max(0, 8*(in-len(src))))
		}
		e := lt[buf&(1<<litRootBits-1)]
		if e&entLiteral != 0 {
			// Up to three literals per refill: they need at most 45 of the 56 bits.
			for k := 0; k < 3 && e&entLiteral != 0 && err == nil; k++ {
				buf >>= e & 63
				nb -= uint(e & 31)
				switch {
				case nb < pad:
					err = ErrTruncated
				case o >= len(dst):
					err = OutputLimitError(len(dst))
				default:
					dst[o] = byte(e >> 16)
					o++
					e = lt[buf&(1<<litRootBits-1)]
				}
			}
			if err != nil {
				break
			}
			continue
		}
		if e&entSub != 0 {
			buf >>= litRootBits
			nb -= litRootBits
			e = lt[int(e>>16)+int(buf&(1<<((e>>8)&15)-1))]
			if e&entLiteral != 0 {
				buf >>= e & 63
				nb -= uint(e & 31)
				if nb < pad {
					err = ErrTruncated
					break
				}
				if o >= len(dst) {
					err = OutputLimitError(len(dst))
					break
				}
				dst[o] = byte(e >> 16)
				o++
				continue
			}
		}
		if e&(entEnd|entInvalid) != 0 {
			buf >>= e & 63
			nb -= uint(e & 31)
			if nb < pad {
				err = ErrTruncated
			} else if e&entInvalid != 0 {
				err = errLitLenCode
			}
			break
		}
		// A length: code and extra bits in one go.
		length := int(e>>16) + int(buf&(1<<(e&31)-1)>>((e>>8)&15))
		buf >>= e & 63
		nb -= uint(e & 31)

		e = dt[buf&(1<<distRootBits-1)]
		if e&entSub != 0 {
			buf >>= distRootBits
			nb -= distRootBits
			e = dt[int(e>>16)+int(buf&(1<<((e>>8)&15)-1))]
		}
		if e&entInvalid != 0 {
			err = errDistCode
			break
		}
		dist := int(e>>16) + int(buf&(1<<(e&31)-1)>>((e>>8)&15))
		buf >>= e & 63
		nb -= uint(e & 31)
		if nb < pad {
			err = ErrTruncated
			break
		}
		if dist > o {
			err = errDistTooFar
			break
		}
		if length > len(dst)-o {
			// Fill dst with what fits: the caller may keep one grain of a longer stream.
			o = copyMatch(dst, o, dist, len(dst)-o)
			err = OutputLimitError(len(dst))
			break
		}
		o = copyMatch(dst, o, dist, length)
	}
	br.buf, br.nb, br.in = buf, nb, in
	return o, err
}

// copyMatch appends length bytes from dist back to dst at o (dist <= o, o+length <= len(dst)) and
// returns the new position.
func copyMatch(dst []byte, o, dist, length int) int {
	end := o + length
	from := o - dist
	if dist >= 8 && end+8 <= len(dst) {
		// Whole words; each reads bytes written before it (dist >= 8), and the last may write up to 7
		// bytes past end, which later output overwrites.
		for o < end {
			binary.LittleEndian.PutUint64(dst[o:], binary.LittleEndian.Uint64(dst[from:]))
			o += 8
			from += 8
		}
		return end
	}
	if dist == 1 && end+8 <= len(dst) {
		w := uint64(dst[from]) * 0x0101010101010101
		for o < end {
			binary.LittleEndian.PutUint64(dst[o:], w)
			o += 8
		}
		return end
	}
	if length <= 16 {
		for ; o < end; o++ {
			dst[o] = dst[o-dist]
		}
		return end
	}
	// Overlapping: the output repeats with period dist from `from`, so each copy can take everything
	// written since `from`, doubling the pattern.
	for o < end {
		o += copy(dst[o:end], dst[from:o])
	}
	return end
}

// bitReader reads DEFLATE's little-endian bit stream. Bits not yet used sit in the low nb bits of buf;
// in is the next byte to load. Past the end of src it loads zero bytes (in then exceeds len(src)), so
// that a refill never fails mid-symbol; overrun tells whether any of them was used.
type bitReader struct {
	src []byte
	in  int
	buf uint64
	nb  uint
}

// refill makes at least 56 bits available.
func (b *bitReader) refill() error {
	if b.in+8 <= len(b.src) {
		b.buf |= binary.LittleEndian.Uint64(b.src[b.in:]) << (b.nb & 63)
		b.in += int(63-b.nb) >> 3
		b.nb |= 56
		return nil
	}
	return b.refillSlow()
}

// refillSlow loads a byte at a time near the end of the input. Once more than 8 padding bytes were
// loaded, at least one was used: the stream is truncated.
func (b *bitReader) refillSlow() error {
	for b.nb <= 56 {
		if b.in < len(b.src) {
			b.buf |= uint64(b.src[b.in]) << b.nb
		}
		b.in++
		b.nb += 8
	}
	if b.in > len(b.src)+8 {
		return ErrTruncated
	}
	return nil
}

// take consumes and returns k bits (k <= nb).
func (b *bitReader) take(k uint) uint32 {
	v := uint32(b.buf & (1<<k - 1))
	b.buf >>= k
	b.nb -= k
	return v
}

// overrun reports whether padding past the end of src was consumed.
func (b *bitReader) overrun() bool {
	return b.in > len(b.src) && b.nb < uint(8*(b.in-len(b.src)))
}

// align drops the bits up to the next byte boundary and returns the input position there, giving back
// whole bytes the buffer had loaded ahead.
func (b *bitReader) align() (int, error) {
	b.nb &^= 7
	in := b.in - int(b.nb/8)
	if in > len(b.src) {
		return in, ErrTruncated
	}
	b.in, b.buf, b.nb = in, 0, 0
	return in, nil
}

// end is the input position just past the last byte the stream used.
func (b *bitReader) end() int {
	return b.in - int(b.nb/8)
}
