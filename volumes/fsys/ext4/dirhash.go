package ext4

import (
	"encoding/binary"
	"math/bits"
)

// Directory-index hash versions (dx_root_info.hash_version); the unsigned variants treat name bytes
// as unsigned chars, as on platforms where char is unsigned.
const (
	hashLegacy = iota
	hashHalfMD4
	hashTea
	hashLegacyUnsigned
	hashHalfMD4Unsigned
	hashTeaUnsigned
)

// dirHash computes the htree hash of name (low bit clear, as stored in index entries). ok is false for
// a hash version this reader does not implement.
func dirHash(name []byte, version uint8, seed [4]uint32) (hash uint32, ok bool) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed != [4]uint32{} {
		buf = seed
	}
	unsigned := version >= hashLegacyUnsigned
	switch version {
	case hashLegacy, hashLegacyUnsigned:
		hash = legacyHash(name, unsigned)
	case hashHalfMD4, hashHalfMD4Unsigned:
		for p := name; ; p = p[32:] {
			var in [8]uint32
			packName(p, in[:], unsigned)
			halfMD4(&buf, &in)
			if len(p) <= 32 {
				break
			}
		}
		hash = buf[1]
	case hashTea, hashTeaUnsigned:
		for p := name; ; p = p[16:] {
			var in [4]uint32
			packName(p, in[:], unsigned)
			tea(&buf, &in)
			if len(p) <= 16 {
				break
			}
		}
		hash = buf[0]
	default:
		return 0, false
	}
	hash &^= 1
	if hash == 0x7fffffff<<1 { // reserved as the end-of-directory marker for 32-bit cookies
		hash = (0x7fffffff - 1) << 1
	}
	return hash, true
}

func charVal(c byte, unsigned bool) uint32 {
	if unsigned {
		return uint32(c)
	}
	return uint32(int32(int8(c)))
}

func legacyHash(name []byte, unsigned bool) uint32 {
	h0, h1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, c := range name {
		h := h1 + (h0 ^ charVal(c, unsigned)*7152373)
		if h&0x80000000 != 0 {
			h -= 0x7fffffff
		}
		h1, h0 = h0, h
	}
	return h0 << 1
}

// packName packs up to 4*len(out) bytes of name into words, big-end first within each word, padding
// with a value derived from the name's full length.
func packName(name []byte, out []uint32, unsigned bool) {
	pad := uint32(len(name)) | uint32(len(name))<<8
	pad |= pad << 16
	n := min(len(name), 4*len(out))
	val := pad
	w := 0
	for i := 0; i < n; i++ {
		val = charVal(name[i], unsigned) + val<<8
		if i%4 == 3 {
			out[w] = val
			w++
			val = pad
		}
	}
	if w < len(out) {
		out[w] = val
		w++
	}
	for ; w < len(out); w++ {
		out[w] = pad
	}
}

// halfMD4 is the three-round MD4 variant ext3 introduced for directory hashing.
func halfMD4(buf *[4]uint32, in *[8]uint32) {
	const k2, k3 = 0x5A827999, 0x6ED9EBA1
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	round := func(fn func(x, y, z uint32) uint32, a *uint32, b, c, d, x uint32, s int) {
		*a = bits.RotateLeft32(*a+fn(b, c, d)+x, s)
	}
	for _, r := range [2][4]int{{0, 1, 2, 3}, {4, 5, 6, 7}} {
		round(f, &a, b, c, d, in[r[0]], 3)
		round(f, &d, a, b, c, in[r[1]], 7)
		round(f, &c, d, a, b, in[r[2]], 11)
		round(f, &b, c, d, a, in[r[3]], 19)
	}
	for _, r := range [2][4]int{{1, 3, 5, 7}, {0, 2, 4, 6}} {
		round(g, &a, b, c, d, in[r[0]]+k2, 3)
		round(g, &d, a, b, c, in[r[1]]+k2, 5)
		round(g, &c, d, a, b, in[r[2]]+k2, 9)
		round(g, &b, c, d, a, in[r[3]]+k2, 13)
	}
	for _, r := range [2][4]int{{3, 7, 2, 6}, {1, 5, 0, 4}} {
		round(h, &a, b, c, d, in[r[0]]+k3, 3)
		round(h, &d, a, b, c, in[r[1]]+k3, 9)
		round(h, &c, d, a, b, in[r[2]]+k3, 11)
		round(h, &b, c, d, a, in[r[3]]+k3, 15)
	}
	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

// tea runs 16 rounds of the Tiny Encryption Algorithm over the first two words of buf.
func tea(buf *[4]uint32, in *[4]uint32) {
	const delta = 0x9E3779B9
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for range 16 {
		sum += delta
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	buf[0] += b0
	buf[1] += b1
}

// hashSeed and unsignedHash come from the superblock (s_hash_seed, s_flags).
func superHashInfo(b []byte) (seed [4]uint32, unsigned bool) {
	le := binary.LittleEndian
	for i := range seed {
		seed[i] = le.Uint32(b[236+4*i:])
	}
	return seed, le.Uint32(b[352:])&0x2 != 0
}
