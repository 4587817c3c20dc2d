package wimres

import (
	"bytes"
	"testing"
)

// Decode is a chunk decompressor under test: dst has the chunk's exact decompressed size.
type Decode func(dst, src []byte) error

// CheckChunks decodes every compressed chunk of res (data compressed in chunks of cs bytes) and
// fails the test on a difference from data. It returns how many chunks were compressed.
func CheckChunks(t testing.TB, data, res []byte, cs int, decode Decode) int {
	t.Helper()
	compressed := 0
	for i, c := range Chunks(t, res, int64(len(data)), cs) {
		want := data[i*cs : min((i+1)*cs, len(data))]
		if len(c) == len(want) {
			continue // stored raw
		}
		compressed++
		got := make([]byte, len(want))
		if err := decode(got, c); err != nil {
			t.Fatalf("chunk %d of %d bytes: %v", i, cs, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d of %d bytes differs from the source", i, cs)
		}
	}
	return compressed
}

// Fuzz seeds f with real chunks and checks that decode never writes past its output.
func Fuzz(f *testing.F, compress string, cs int, decode Decode) {
	data := Sample(f, 4*cs+1000)
	for _, c := range Chunks(f, Capture(f, data, compress, cs), int64(len(data)), cs)[:4] {
		f.Add(c, uint16(cs-1))
	}
	f.Fuzz(func(t *testing.T, src []byte, size uint16) {
		dst := make([]byte, int(size)+1)
		_ = decode(dst[:size], src)
		if dst[size] != 0 {
			t.Fatal("wrote past the output")
		}
	})
}

// Bench times decode over the compressed chunks of 1 MiB of Sample data.
func Bench(b *testing.B, compress string, cs int, decode Decode) {
	data := Sample(b, 1<<20)
	chunks := Chunks(b, Capture(b, data, compress, cs), int64(len(data)), cs)
	out := make([]byte, cs)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for _, c := range chunks {
			if len(c) < cs {
				if err := decode(out, c); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
