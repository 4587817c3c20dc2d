package md

// GF(2^8) arithmetic over md's RAID-6 polynomial x^8+x^4+x^3+x^2+1 (0x11d), generator 2: the Q syndrome
// is the sum of g^slot · D_slot over the data chunks of a stripe.
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

// gfPow2 is g^n.
func gfPow2(n int) byte { return gfExp[n%255] }

// gfInv is a^-1 for a != 0.
func gfInv(a byte) byte { return gfExp[255-int(gfLog[a])] }

// mulAdd sets dst ^= c·src.
func mulAdd(dst, src []byte, c byte) {
	if c == 0 {
		return
	}
	lc := int(gfLog[c])
	for i, s := range src {
		if s != 0 {
			dst[i] ^= gfExp[int(gfLog[s])+lc]
		}
	}
}

// scale sets b = c·b.
func scale(b []byte, c byte) {
	for i, s := range b {
		b[i] = gfMul(s, c)
	}
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
