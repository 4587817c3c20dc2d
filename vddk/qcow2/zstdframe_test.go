package qcow2

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The frame walker on the frames qemu-img writes: each compressed cluster's frame ends where the
// walker says (the frame alone decodes to the cluster qemu-img reads), every shorter prefix and
// garbage are refused, and the bytes after the frame (the next cluster's) are not counted.
func TestZstdFrameEndOnQemuFrames(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	// Text, runs of one byte (RLE blocks) and random bytes (raw blocks), in 4 KiB and 64 KiB clusters.
	r := rand.New(rand.NewPCG(5, 6))
	words := strings.Fields("the guest wrote logs config files and some packages to its disk")
	var data bytes.Buffer
	for data.Len() < 1<<20 {
		switch r.IntN(3) {
		case 0:
			for range 200 {
				data.WriteString(words[r.IntN(len(words))] + " ")
			}
		case 1:
			data.Write(bytes.Repeat([]byte{byte(r.IntN(256))}, 1+r.IntN(70000)))
		default:
			b := make([]byte, 1+r.IntN(3000))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			data.Write(b)
		}
	}
	raw := data.Bytes()[:1<<20]
	src := filepath.Join(dir, "src.raw")
	if err := os.WriteFile(src, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, cs := range []string{"4096", "65536"} {
		img := filepath.Join(dir, cs+".qcow2")
		if out, err := exec.Command("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c",
			"-o", "compression_type=zstd,cluster_size="+cs, src, img).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v: %s", err, out)
		}
		file, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		im, err := Open(bytes.NewReader(file), int64(len(file)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		frames := 0
		for off := int64(0); off < im.Size(); off += im.clusterSize {
			run, err := im.lookup(off, im.clusterSize)
			if err != nil {
				t.Fatal(err)
			}
			if run.compressed == 0 {
				continue
			}
			frames++
			coff, n := im.compressedRange(run.compressed)
			b := file[coff:min(int64(len(file)), coff+n)]
			end, ok := zstdFrameEnd(b)
			if !ok {
				t.Fatalf("cluster size %s, cluster at %d: frame not found", cs, off)
			}
			got, err := dec.DecodeAll(b[:end], nil)
			if err != nil || !bytes.Equal(got, raw[off:off+im.clusterSize]) {
				t.Fatalf("cluster size %s, cluster at %d: the %d-byte frame decodes to %d bytes, %v", cs, off, end, len(got), err)
			}
			for _, k := range []int{0, 1, 4, 5, 6, end / 2, end - 4, end - 1} {
				if k >= 0 && k < end {
					if _, ok := zstdFrameEnd(b[:k]); ok {
						t.Fatalf("cluster size %s, cluster at %d: a %d-byte prefix of the %d-byte frame passes", cs, off, k, end)
					}
				}
			}
		}
		if frames < 4 {
			t.Fatalf("cluster size %s: only %d compressed clusters", cs, frames)
		}
	}
	garbage := [][]byte{nil, {0x28, 0xb5, 0x2f}, []byte("not a zstd frame at all"),
		{0x28, 0xb5, 0x2f, 0xfd, 0x08, 0, 0, 0, 0},       // reserved header bit
		{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x10, 0x07, 0, 0}, // reserved block type
	}
	for _, g := range garbage {
		if n, ok := zstdFrameEnd(g); ok {
			t.Fatalf("% x: taken as a %d-byte frame", g, n)
		}
	}
}

// Frames made here end where the walker says, with and without checksum and content size, however
// many blocks they have and whatever follows them.
func TestZstdFrameEndOnEncoderFrames(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 60 {
		var b bytes.Buffer
		for b.Len() < i*9000 {
			if r.IntN(2) == 0 {
				b.Write(bytes.Repeat([]byte{byte(i)}, r.IntN(5000)))
			} else {
				b.WriteByte(byte(r.Uint32()))
			}
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(i%2 == 0), zstd.WithSingleSegment(i%3 == 0))
		if err != nil {
			t.Fatal(err)
		}
		frame := enc.EncodeAll(b.Bytes(), nil)
		tail := append(bytes.Clone(frame), "trailing bytes of the next cluster"...)
		if n, ok := zstdFrameEnd(tail); !ok || n != len(frame) {
			t.Fatalf("frame %d of %d bytes: walker says %d, %v", i, len(frame), n, ok)
		}
		if _, ok := zstdFrameEnd(frame[:len(frame)-1]); ok {
			t.Fatalf("frame %d: cut by one byte, still taken", i)
		}
	}
}

// FuzzZstdFrameEnd: any input, no panic; a frame found lies inside the input, is found again alone,
// and is refused when cut by a byte.
func FuzzZstdFrameEnd(f *testing.F) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc.EncodeAll(bytes.Repeat([]byte("qcow2 cluster "), 5000), nil))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x10, 0x01, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := zstdFrameEnd(b)
		if !ok {
			return
		}
		if n > len(b) {
			t.Fatalf("frame of %d bytes in %d", n, len(b))
		}
		if m, ok := zstdFrameEnd(b[:n]); !ok || m != n {
			t.Fatalf("frame of %d bytes alone: %d, %v", n, m, ok)
		}
		if _, ok := zstdFrameEnd(b[:n-1]); ok {
			t.Fatalf("frame of %d bytes cut by one still taken", n)
		}
	})
}
