package vddk

import (
	"errors"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
)

// FuzzInflateRaw compares inflateRaw with compress/flate on arbitrary input, with a 1 MiB destination
// and with one that fits the standard library's output exactly or is a byte short of it.
//
// Outcomes must agree, except that inflateRaw follows zlib where compress/flate is more lenient about
// codes that can never end a stream (a code-length code of a single one-bit code, a literal/length
// code without end-of-block): those streams fail in both, inflateRaw at the block header, compress/flate
// when the input or the output limit runs out.
func FuzzInflateRaw(f *testing.F) {
	for _, s := range truncationStreams() {
		f.Add(s.data)
	}
	for _, c := range compressors() {
		f.Add(c.fn([]byte("seed seed seed seed, a grain of a stream-optimized disk")))
	}
	for _, c := range craftedStreams() {
		f.Add(c.stream)
	}
	f.Add([]byte{})
	f.Add([]byte{0x03, 0x00})             // fixed block, end of block only
	f.Add([]byte{0x01, 0, 0, 0xff, 0xff}) // empty stored block
	f.Fuzz(func(t *testing.T, src []byte) {
		checkAgainstStdlib(t, src, 1<<20)
		want, _, err := stdInflate(src, 1<<20)
		if err != nil || len(want) == 0 {
			return
		}
		checkAgainstStdlib(t, src, len(want))
		dst := make([]byte, len(want)-1)
		n, _, err := deflate.InflateRaw(dst, src)
		if !errors.As(err, new(deflate.OutputLimitError)) || n != len(dst) {
			t.Fatalf("output one byte too large: %d bytes, %v", n, err)
		}
	})
}
