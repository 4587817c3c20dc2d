package lzx_test

import (
	"bytes"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"github.com/vmdkmount/vmdkmount/volumes/internal/lzcopy"
	"github.com/vmdkmount/vmdkmount/volumes/internal/lzx"
)

// TestAgainstWimlib decodes every chunk wimlib's LZX compressor wrote with WOF's 32 KiB chunks, at
// a fast, the default and the strongest level (which choose verbatim and aligned blocks differently),
// and compares with the source bytes.
func TestAgainstWimlib(t *testing.T) {
	data := wimres.Sample(t, 300_001)
	for _, level := range []string{"lzx:20", "lzx", "lzx:100"} {
		res := wimres.Capture(t, data, level, lzx.WindowSize)
		if n := wimres.CheckChunks(t, data, res, lzx.WindowSize, lzx.Decompress); n < 5 {
			t.Fatalf("%s: only %d compressed chunks", level, n)
		}
	}
}

// TestMachineCode decodes wimlib's chunks of real machine code (this test's own binary), with its
// E8 calls and aligned-offset blocks.
func TestMachineCode(t *testing.T) {
	data := testfix.ExecutablePrefix(t, 1<<20)
	res := wimres.Capture(t, data, "lzx", lzx.WindowSize)
	if n := wimres.CheckChunks(t, data, res, lzx.WindowSize, lzx.Decompress); n < 5 {
		t.Fatalf("only %d compressed chunks", n)
	}
}

// TestInPlace decodes wimlib's chunks with DecompressWindow into a window filled with a marker, as
// the WOF reader does inside a read's buffer: the chunk is right, and at most 7 bytes past it are
// written.
func TestInPlace(t *testing.T) {
	data := testfix.ExecutablePrefix(t, 1<<20)
	res := wimres.Capture(t, data, "lzx", lzx.WindowSize)
	var d lzx.Decoder
	w := new(lzcopy.Window)
	inPlace := func(dst, src []byte) error {
		for i := range w {
			w[i] = 0xA5
		}
		if err := d.DecompressWindow(w, len(dst), src); err != nil {
			return err
		}
		if rest := w[len(dst)+7:]; !bytes.Equal(rest, bytes.Repeat([]byte{0xA5}, len(rest))) {
			t.Fatalf("bytes more than 7 past a chunk of %d written", len(dst))
		}
		copy(dst, w[:len(dst)])
		return nil
	}
	if n := wimres.CheckChunks(t, data, res, lzx.WindowSize, inPlace); n < 5 {
		t.Fatalf("only %d compressed chunks", n)
	}
}

// TestTruncated: every prefix of a real chunk fails cleanly or decodes, never panics or overruns.
func TestTruncated(t *testing.T) {
	data := wimres.Sample(t, 140000)
	res := wimres.Capture(t, data, "lzx", lzx.WindowSize)
	c := wimres.Chunks(t, res, int64(len(data)), lzx.WindowSize)[0]
	out := make([]byte, lzx.WindowSize)
	if err := lzx.Decompress(out, c[:len(c)/2]); err == nil {
		t.Fatal("a chunk cut in half decoded")
	}
	for n := 0; n < len(c); n += 7 {
		_ = lzx.Decompress(out, c[:n])
	}
}

func FuzzLZX(f *testing.F) { wimres.Fuzz(f, "lzx", lzx.WindowSize, lzx.Decompress) }

func BenchmarkLZX(b *testing.B) {
	var d lzx.Decoder
	wimres.Bench(b, "lzx", lzx.WindowSize, d.Decompress)
}
