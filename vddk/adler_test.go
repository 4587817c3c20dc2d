package vddk

import (
	"bytes"
	"compress/zlib"
	"hash/adler32"
	"math/rand/v2"
	"testing"
)

// adlerPaths are the checksum implementations this machine can run, each compared with the standard
// library: the portable one always, the AVX2 one where the CPU has it, and the dispatcher.
func adlerPaths(t testing.TB) map[string]func([]byte) uint32 {
	paths := map[string]func([]byte) uint32{"generic": adler32Generic, "dispatch": adler32Sum}
	if hasAVX2 {
		paths["avx2"] = adler32AVX2
	} else {
		t.Logf("no AVX2 here: only the portable checksum is checked")
	}
	return paths
}

// Every path equals the standard library's on every short length at every start offset, around the
// 64-byte step, the 5552-byte NMAX and the 64 KiB chunk edges, and on random lengths, over random,
// all-0xff (largest sums) and zero data.
func TestAdler32MatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 1<<20+7+32)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	ff := bytes.Repeat([]byte{0xff}, len(big))
	zero := make([]byte, len(big))
	var lengths []int
	for _, edge := range []int{5552, 2 * 5552, 3 * 5552, 12 * 5552, 65536, 2 * 65536, 3 * 65536} {
		for _, d := range []int{-65, -64, -63, -1, 0, 1, 63, 64, 65} {
			lengths = append(lengths, edge+d)
		}
	}
	lengths = append(lengths, 1<<20-1, 1<<20, 1<<20+7)
	for range 200 {
		lengths = append(lengths, r.IntN(256<<10))
	}
	paths := adlerPaths(t)
	for _, data := range []struct {
		kind string
		b    []byte
	}{{"random", big}, {"0xff", ff}, {"zero", zero}} {
		check := func(off, n int) {
			p := data.b[off : off+n]
			want := adler32.Checksum(p)
			for name, sum := range paths {
				if got := sum(p); got != want {
					t.Fatalf("%s, %s data, length %d at offset %d: %#x, want %#x", name, data.kind, n, off, got, want)
				}
			}
		}
		for n := 0; n <= 300; n++ {
			for off := range 32 {
				check(off, n)
			}
		}
		for _, n := range lengths {
			check(r.IntN(32), n)
		}
	}
}

func FuzzAdler32(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte("grain data"), uint8(3))
	f.Add(bytes.Repeat([]byte{0xff}, 5553), uint8(1))
	f.Add(bytes.Repeat([]byte{0xff}, 65536+100), uint8(31))
	paths := adlerPaths(f)
	f.Fuzz(func(t *testing.T, data []byte, skip uint8) {
		p := data[min(int(skip)%32, len(data)):]
		want := adler32.Checksum(p)
		for name, sum := range paths {
			if got := sum(p); got != want {
				t.Fatalf("%s over %d bytes: %#x, want %#x", name, len(p), got, want)
			}
		}
	})
}

func BenchmarkAdler32(b *testing.B) {
	p := make([]byte, 64<<10)
	for i := range p {
		p[i] = byte(i * 7)
	}
	paths := adlerPaths(b)
	paths["stdlib"] = adler32.Checksum
	delete(paths, "dispatch")
	for _, name := range []string{"avx2", "generic", "stdlib"} {
		sum, ok := paths[name]
		if !ok {
			continue
		}
		b.Run(name+"/64KiB", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				sum(p)
			}
		})
	}
}

// A grain whose zlib checksum was damaged, or whose stored bytes were, is refused; the intact one
// inflates (streams made by the standard library's zlib writer, independent of ours).
func TestInflateChecksIntegrity(t *testing.T) {
	data := bytes.Repeat([]byte("grain data "), 6000)[:64<<10]
	for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.BestCompression} {
		var buf bytes.Buffer
		w, _ := zlib.NewWriterLevel(&buf, level)
		w.Write(data)
		w.Close()
		good := buf.Bytes()
		out := make([]byte, len(data))
		if n, err := inflateInto(out, good); err != nil || n != len(data) || !bytes.Equal(out, data) {
			t.Fatalf("level %d: intact grain: %d bytes, %v", level, n, err)
		}
		badSum := bytes.Clone(good)
		badSum[len(badSum)-1] ^= 1
		if _, err := inflateInto(out, badSum); err == nil {
			t.Errorf("level %d: a damaged checksum was accepted", level)
		}
		if level == zlib.NoCompression {
			badData := bytes.Clone(good)
			badData[len(badData)/2] ^= 0x40 // inside a stored block: only the checksum can tell
			if _, err := inflateInto(out, badData); err == nil {
				t.Errorf("damaged stored bytes were accepted")
			}
		}
	}
}
