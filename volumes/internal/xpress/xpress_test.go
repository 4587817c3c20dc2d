package xpress_test

import (
	"errors"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"github.com/vmdkmount/vmdkmount/volumes/internal/xpress"
)

// TestAgainstWimlib decodes every chunk wimlib's XPRESS compressor wrote, for the three WOF chunk
// sizes and the largest, and compares with the source bytes.
func TestAgainstWimlib(t *testing.T) {
	data := wimres.Sample(t, 300_001)
	for _, cs := range []int{4096, 8192, 16384, 65536} {
		res := wimres.Capture(t, data, "xpress", cs)
		if n := wimres.CheckChunks(t, data, res, cs, xpress.Decompress); n < 5 {
			t.Fatalf("chunk size %d: only %d compressed chunks", cs, n)
		}
	}
}

// TestMachineCode decodes wimlib's chunks of real machine code (this test's own binary), whose
// matches and length escapes fall at other bit positions than the sample's.
func TestMachineCode(t *testing.T) {
	data := testfix.ExecutablePrefix(t, 1<<20)
	for _, cs := range []int{4096, 16384} {
		res := wimres.Capture(t, data, "xpress", cs)
		if n := wimres.CheckChunks(t, data, res, cs, xpress.Decompress); n < 5 {
			t.Fatalf("chunk size %d: only %d compressed chunks", cs, n)
		}
	}
}

// TestTruncated: every prefix of a real chunk fails cleanly or decodes, never panics or overruns.
func TestTruncated(t *testing.T) {
	data := wimres.Sample(t, 40000)
	res := wimres.Capture(t, data, "xpress", 4096)
	c := wimres.Chunks(t, res, int64(len(data)), 4096)[0]
	out := make([]byte, 4096)
	if err := xpress.Decompress(out, c[:200]); err == nil {
		t.Fatal("a chunk cut inside its Huffman table decoded")
	}
	for n := 256; n < len(c); n += 7 {
		_ = xpress.Decompress(out, c[:n])
	}
}

// TestLimits: an output over one block, or an input over twice that, is refused, not decoded
// partly.
func TestLimits(t *testing.T) {
	var d xpress.Decoder
	if err := d.Decompress(make([]byte, xpress.MaxSize+1), make([]byte, 300)); !errors.Is(err, xpress.ErrCorrupt) {
		t.Errorf("output of MaxSize+1 bytes: %v", err)
	}
	if err := d.Decompress(make([]byte, 4096), make([]byte, 2*xpress.MaxSize)); !errors.Is(err, xpress.ErrCorrupt) {
		t.Errorf("input of twice MaxSize: %v", err)
	}
}

func FuzzXpress(f *testing.F) { wimres.Fuzz(f, "xpress", 4096, xpress.Decompress) }

func BenchmarkXpress4K(b *testing.B) {
	var d xpress.Decoder
	wimres.Bench(b, "xpress", 4096, d.Decompress)
}
