package vddk

import "encoding/binary"

// adler32Generic is the zlib checksum of p, for any architecture.
func adler32Generic(p []byte) uint32 { return adler32Update(1, p) }

// adler32Update continues the zlib checksum adler over p, 128 bytes at a time: inflating a
// stream-optimized disk spent a third of its time in hash/adler32's byte-serial loop.
//
// Over a run of n bytes b[0..n-1], s1 grows by their sum and s2 by n*s1 + Σ (n-i)*b[i]. Each 64-bit word
// holds eight bytes; masking splits it into even and odd bytes in four 16-bit lanes, so a few adds per
// word keep lane-wise totals (all bytes, even bytes, odd bytes, and the running total before each word)
// that are weighted and summed once per block, before any lane can pass 16 bits.
func adler32Update(adler uint32, p []byte) uint32 {
	const mod = 65521
	const lanes = 0x00ff00ff00ff00ff
	s1, s2 := uint64(adler&0xffff), uint64(adler>>16)
	for len(p) >= 128 {
		var all, even, odd, before uint64
		b := (*[128]byte)(p)
		for i := 0; i < 128; i += 16 {
			w0 := binary.LittleEndian.Uint64(b[i:])
			w1 := binary.LittleEndian.Uint64(b[i+8:])
			e0, o0 := w0&lanes, (w0>>8)&lanes
			e1, o1 := w1&lanes, (w1>>8)&lanes
			// before: lanes of the words ahead of each word, summed per word (at most 120*510).
			before += 2*all + e0 + o0
			all += e0 + o0 + e1 + o1 // at most 16*510
			even += e0 + e1
			odd += o0 + o1
		}
		// Byte q of a word counts 8-q times within it; word j counts 15-j more times, eight each.
		within := 8*lane(even, 0) + 6*lane(even, 1) + 4*lane(even, 2) + 2*lane(even, 3) +
			7*lane(odd, 0) + 5*lane(odd, 1) + 3*lane(odd, 2) + lane(odd, 3)
		s2 += 128*s1 + 8*sumLanes(before) + within
		s1 += sumLanes(all)
		p = p[128:]
		// Reduce now and then: between reductions s2 stays far below 2^64.
		if s2 >= 1<<56 {
			s1 %= mod
			s2 %= mod
		}
	}
	s1 %= mod
	s2 %= mod
	for _, b := range p {
		s1 += uint64(b)
		s2 += s1
	}
	return uint32(s2%mod)<<16 | uint32(s1%mod)
}

func lane(v uint64, i uint) uint64 { return v >> (16 * i) & 0xffff }

func sumLanes(v uint64) uint64 { return lane(v, 0) + lane(v, 1) + lane(v, 2) + lane(v, 3) }
