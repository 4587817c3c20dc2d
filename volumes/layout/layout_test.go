package layout

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

type mem struct{ *bytes.Reader }

func newMem(b []byte) Dev { return mem{bytes.NewReader(b)} }

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// checkReads compares random reads of d, from several goroutines at once, with want.
func checkReads(t *testing.T, d Dev, want []byte) {
	t.Helper()
	if d.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", d.Size(), len(want))
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 2))
			for i := 0; i < 200; i++ {
				off := r.Int64N(int64(len(want)) + 100)
				buf := make([]byte, r.IntN(3000)+1)
				n, err := d.ReadAt(buf, off)
				end := min(off+int64(len(buf)), int64(len(want)))
				if off >= int64(len(want)) {
					if n != 0 || err != io.EOF {
						t.Errorf("read at %d past the end: %d, %v", off, n, err)
					}
					continue
				}
				if n != int(end-off) || !bytes.Equal(buf[:n], want[off:end]) {
					t.Errorf("read %d at %d: got %d bytes (%v), content differs", len(buf), off, n, err)
					return
				}
				if (int64(len(buf)) > end-off) != (err == io.EOF) {
					t.Errorf("read %d at %d: err %v", len(buf), off, err)
				}
			}
		}(uint64(g))
	}
	wg.Wait()
}

func TestConcatSlice(t *testing.T) {
	a, b, c := random(1000, 1), random(1, 2), random(4097, 3)
	d := Concat([]Dev{newMem(a), newMem(b), newMem(c)})
	checkReads(t, d, append(append(append([]byte{}, a...), b...), c...))
	s, err := Slice(d, 500, 600)
	if err != nil {
		t.Fatal(err)
	}
	checkReads(t, s, append(append(append([]byte{}, a...), b...), c...)[500:1100])
	if _, err := Slice(d, 5000, 100); err == nil {
		t.Error("slice past the end accepted")
	}
	if _, err := Concat([]Dev{newMem(a), Missing(10)}).ReadAt(make([]byte, 20), 995); !errors.Is(err, ErrMissing) {
		t.Errorf("read into a missing part: %v", err)
	}
}

func TestStripe(t *testing.T) {
	const chunk, n = 64, 3
	vol := random(chunk*n*5+100, 4) // a partial last row
	cols := make([][]byte, n)
	for k := 0; k*chunk < len(vol); k++ {
		cols[k%n] = append(cols[k%n], vol[k*chunk:min(len(vol), (k+1)*chunk)]...)
	}
	var devs []Dev
	for _, c := range cols {
		devs = append(devs, newMem(c))
	}
	d, err := Stripe(devs, chunk, int64(len(vol)))
	if err != nil {
		t.Fatal(err)
	}
	checkReads(t, d, vol)
	if _, err := Stripe([]Dev{newMem(cols[0][:10]), devs[1], devs[2]}, chunk, int64(len(vol))); err == nil {
		t.Error("short column accepted")
	}
}

func TestRAID5(t *testing.T) {
	const chunk, n = 32, 4
	vol := random(chunk*(n-1)*7, 5)
	members := make([][]byte, n)
	for row := 0; row*(n-1)*chunk < len(vol); row++ {
		parity := (n - 1) - row%n
		p := make([]byte, chunk)
		for k := 0; k < n-1; k++ {
			c := vol[(row*(n-1)+k)*chunk:][:chunk]
			members[(parity+1+k)%n] = append(members[(parity+1+k)%n], c...)
			for i := range p {
				p[i] ^= c[i]
			}
		}
		members[parity] = append(members[parity], p...)
	}
	for missing := -1; missing < n; missing++ {
		devs := make([]Dev, n)
		for i := range devs {
			if i != missing {
				devs[i] = newMem(members[i])
			}
		}
		d, err := RAID5(devs, chunk, int64(len(vol)))
		if err != nil {
			t.Fatal(err)
		}
		checkReads(t, d, vol)
	}
	if _, err := RAID5([]Dev{nil, nil, newMem(members[2]), newMem(members[3])}, chunk, int64(len(vol))); !errors.Is(err, ErrMissing) {
		t.Errorf("two missing: %v", err)
	}
}

func TestZero(t *testing.T) {
	checkReads(t, Zero(5000), make([]byte, 5000))
	if _, err := Zero(10).ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
}
