package vddk

import (
	"bytes"
	"compress/zlib"
	"hash/adler32"
	"math/rand/v2"
	"testing"
)

// Our adler32 equals the standard library's on every length around the word and reduction edges, on
// random, all-0xff (largest sums) and zero data.
func TestAdler32MatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3<<20+13)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	ff := bytes.Repeat([]byte{0xff}, len(big))
	zero := make([]byte, len(big))
	lengths := []int{0, 1, 7, 8, 9, 15, 16, 17, 5552, 5553, 65536, 1<<20 - 1, 1 << 20, 1<<20 + 7, len(big)}
	for range 200 {
		lengths = append(lengths, r.IntN(len(big)))
	}
	for _, data := range [][]byte{big, ff, zero} {
		for _, n := range lengths {
			off := r.IntN(8)
			if off+n > len(data) {
				off = 0
			}
			p := data[off : off+n]
			if got, want := adler32Sum(p), adler32.Checksum(p); got != want {
				t.Fatalf("length %d at %d: %#x, want %#x", n, off, got, want)
			}
		}
	}
}

func BenchmarkAdler32(b *testing.B) {
	p := make([]byte, 64<<10)
	for i := range p {
		p[i] = byte(i * 7)
	}
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			adler32Sum(p)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			adler32.Checksum(p)
		}
	})
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
