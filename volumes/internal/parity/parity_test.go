package parity

import (
	"bytes"
	"math/rand"
	"slices"
	"testing"
)

// TestSolve loses every one and every pair of data pieces of random stripes and rebuilds them from
// the survivors with each parity the plan allows.
func TestSolve(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for n := 1; n <= 6; n++ {
		data := make([][]byte, n)
		for i := range data {
			data[i] = make([]byte, 64)
			rng.Read(data[i])
		}
		p, q := make([]byte, 64), make([]byte, 64)
		Syndromes(p, q, data)
		for x := 0; x < n; x++ {
			for y := -1; y < n; y++ {
				if y == x {
					continue
				}
				lost := []int{x}
				if y >= 0 {
					lost = append(lost, y)
				}
				for _, have := range [][2]bool{{true, true}, {true, false}, {false, true}} {
					useP, useQ, ok := Plan(len(lost), have[0], have[1])
					if !ok {
						continue
					}
					var pSum, qSum []byte
					if useP {
						pSum = bytes.Clone(p)
					}
					if useQ {
						qSum = bytes.Clone(q)
					}
					for s, d := range data {
						if s != x && s != y {
							Add(pSum, qSum, d, s)
						}
					}
					out := make([]byte, 64)
					if err := Solve(out, lost, pSum, qSum); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(out, data[x]) {
						t.Fatalf("%d pieces, lost %v, P %v Q %v: wrong rebuild", n, lost, useP, useQ)
					}
				}
			}
		}
	}
	if _, _, ok := Plan(2, true, false); ok {
		t.Error("two lost pieces planned without Q")
	}
	if err := Solve(make([]byte, 1), []int{0, 1}, make([]byte, 1), nil); err != ErrUnsolvable {
		t.Errorf("two lost without Q: %v", err)
	}
}

// TestKnownQ checks the Q syndrome against a value worked by hand: g^0·1 ^ g^1·1 ^ g^2·0x80 =
// 1 ^ 2 ^ (0x80·4 mod 0x11d = 0x1d·2 = 0x3a).
func TestKnownQ(t *testing.T) {
	p, q := make([]byte, 1), make([]byte, 1)
	Syndromes(p, q, [][]byte{{1}, {1}, {0x80}})
	if p[0] != 0x80 || q[0] != 1^2^0x3a {
		t.Errorf("P %#x Q %#x", p[0], q[0])
	}
}

// BenchmarkRebuild times rebuilding one 64 KiB piece of a RAID6 stripe of four data pieces: from P
// (XOR) and from P and Q (two lost pieces). Compare the two with -bench and see the ratio.
func BenchmarkRebuild(b *testing.B) {
	const size = 64 << 10
	rng := rand.New(rand.NewSource(1))
	data := make([][]byte, 4)
	for i := range data {
		data[i] = make([]byte, size)
		rng.Read(data[i])
	}
	p, q := make([]byte, size), make([]byte, size)
	Syndromes(p, q, data)
	out, pSum, qSum := make([]byte, size), make([]byte, size), make([]byte, size)
	for _, bc := range []struct {
		name string
		lost []int
	}{{"P", []int{1}}, {"PQ", []int{1, 2}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				copy(pSum, p)
				var qs []byte
				if len(bc.lost) == 2 {
					copy(qSum, q)
					qs = qSum
				}
				for s, d := range data {
					if !slices.Contains(bc.lost, s) {
						Add(pSum, qs, d, s)
					}
				}
				if err := Solve(out, bc.lost, pSum, qs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
