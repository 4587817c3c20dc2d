package vddk

import (
	"bytes"
	"compress/zlib"
	"io"
	"math/rand/v2"
	"testing"

	kflate "github.com/klauspost/compress/flate"
	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
)

// BenchmarkInflateGrain inflates 64 KiB grains (compressed by compress/zlib at its default level 6)
// with inflateRaw and with the klauspost streaming reader, reset per grain, that it replaced.
func BenchmarkInflateGrain(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	inputs := []testInput{
		{"text", wordText(r, 64<<10)},
		{"random", randomBytes(r, 64<<10)},
		{"mixed", mixed(r, 64<<10)},
		// A short line repeated: long matches at a distance of 20 bytes, overlapping their source.
		{"lines", bytes.Repeat([]byte("guest text and logs\n"), 64<<10/20+1)[:64<<10]},
	}
	for _, in := range inputs {
		var zb bytes.Buffer
		w, _ := zlib.NewWriterLevel(&zb, 6)
		w.Write(in.data)
		w.Close()
		body := zb.Bytes()[2 : zb.Len()-4]
		out := make([]byte, len(in.data))
		b.Run(in.name+"/inflateRaw", func(b *testing.B) {
			b.SetBytes(int64(len(out)))
			for b.Loop() {
				if n, _, err := deflate.InflateRaw(out, body); err != nil || n != len(out) {
					b.Fatal(n, err)
				}
			}
		})
		b.Run(in.name+"/klauspost", func(b *testing.B) {
			b.SetBytes(int64(len(out)))
			src := bytes.NewReader(body)
			fr := kflate.NewReader(src)
			for b.Loop() {
				src.Reset(body)
				fr.(kflate.Resetter).Reset(src, nil)
				if n, err := io.ReadFull(fr, out); err != nil || n != len(out) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
