// Package parity is the RAID-5/6 stripe math that md and Btrfs share: P is the XOR of a stripe's
// data pieces, Q the GF(2^8) syndrome Σ g^slot·D_slot over the polynomial x^8+x^4+x^3+x^2+1 (0x11d)
// with generator 2, as Linux's raid6 library computes both. A stripe loses at most two pieces and
// its lost data is solved from the survivors.
package parity

import (
	"crypto/subtle"
	"errors"
)

// ErrUnsolvable says a stripe lost more than its parity can rebuild.
var ErrUnsolvable = errors.New("stripe lost more pieces than its parity rebuilds")

var gfExp, gfLog = func() ([512]byte, [256]byte) {
	var exp [512]byte
	var log [256]byte
	x := 1
	for i := 0; i < 255; i++ {
		exp[i] = byte(x)
		log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	for i := 255; i < 512; i++ {
		exp[i] = exp[i-255]
	}
	return exp, log
}()

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// pow2 is g^n.
func pow2(n int) byte { return gfExp[n%255] }

// inv is a^-1 for a != 0.
func inv(a byte) byte { return gfExp[255-int(gfLog[a])] }

// mulTable[c][x] is c·x: one 256-byte row per constant keeps a stripe's multiply to a lookup a byte.
var mulTable = func() *[256][256]byte {
	var t [256][256]byte
	for c := range 256 {
		for x := range 256 {
			t[c][x] = gfMul(byte(c), byte(x))
		}
	}
	return &t
}()

// mulAdd sets dst ^= c·src.
func mulAdd(dst, src []byte, c byte) {
	if c == 0 {
		return
	}
	row := &mulTable[c]
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] ^= row[s]
	}
}

// scale sets b = c·b.
func scale(b []byte, c byte) {
	row := &mulTable[c]
	for i, s := range b {
		b[i] = row[s]
	}
}

func xorInto(dst, src []byte) { subtle.XORBytes(dst, dst, src) }

// Plan says which parity pieces rebuilding a stripe with lost missing data pieces reads, given which
// are present: P alone for one lost piece when it can, Q too for two (or when P is gone too). ok is
// false when the stripe cannot be rebuilt.
func Plan(lost int, haveP, haveQ bool) (useP, useQ, ok bool) {
	switch {
	case lost == 1 && haveP:
		return true, false, true
	case lost == 1 && haveQ:
		return false, true, true
	case lost == 2 && haveP && haveQ:
		return true, true, true
	}
	return false, false, false
}

// Add folds surviving data piece d of Q-syndrome slot into the running sums: pSum ^= d and
// qSum ^= g^slot·d (either sum may be nil when that parity is not used).
func Add(pSum, qSum, d []byte, slot int) {
	if pSum != nil {
		xorInto(pSum, d)
	}
	if qSum != nil {
		mulAdd(qSum, d, pow2(slot))
	}
}

// Solve writes lost data piece lost[0] into out. lost holds the Q slots of the stripe's missing data
// pieces (one or two, the wanted one first); pSum and qSum are P and Q with every surviving data
// piece added (nil for a parity Plan did not use). out may alias neither sum.
func Solve(out []byte, lost []int, pSum, qSum []byte) error {
	switch {
	case len(lost) == 1 && pSum != nil: // D = P ^ the rest
		copy(out, pSum)
	case len(lost) == 1 && qSum != nil: // D = (Q ^ the rest's syndrome) / g^x
		copy(out, qSum)
		scale(out, inv(pow2(lost[0])))
	case len(lost) == 2 && pSum != nil && qSum != nil: // Dx = (g^y·P' ^ Q') / (g^x ^ g^y)
		gx, gy := pow2(lost[0]), pow2(lost[1])
		if gx == gy {
			return ErrUnsolvable
		}
		copy(out, qSum)
		mulAdd(out, pSum, gy)
		scale(out, inv(gx^gy))
	default:
		return ErrUnsolvable
	}
	return nil
}

// Syndromes computes P and Q of data pieces given in slot order (for tests and checks).
func Syndromes(p, q []byte, data [][]byte) {
	clear(p)
	clear(q)
	for slot, d := range data {
		Add(p, q, d, slot)
	}
}
