package squashfs

import (
	"bytes"
	"compress/zlib"
	"runtime"
	"testing"
)

// zstdFrame is one zstd frame holding payload in a raw block, its header asking for a window of
// 1<<windowLog bytes.
func zstdFrame(windowLog byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3,
		byte(n<<3 | 1), byte(n >> 5), byte(n >> 13)}, payload...)
}

// Frames whose headers ask for a 2 GiB window, the first or a later one: zstd's window is bounded by the
// block, so decoding a few bytes allocates a few blocks at most.
func TestZstdWindowBoundedByBlock(t *testing.T) {
	const limit = 128 << 10
	x, err := newDecompressor(compZstd, limit)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string][]byte{
		"small window":        zstdFrame(17, []byte("hello!")),
		"2 GiB window":        zstdFrame(31, []byte("hello!")),
		"second frame 2 GiB":  append(zstdFrame(17, []byte("hello!")), zstdFrame(31, []byte("again"))...),
		"window past the cap": zstdFrame(41, []byte("hello!")),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := x.decompress(src, limit)
		runtime.ReadMemStats(&after)
		t.Logf("%s: %q, %v", name, out, err)
		if a := after.TotalAlloc - before.TotalAlloc; a > 8*limit+(4<<20) {
			t.Errorf("%s: decoding %d bytes allocated %d MiB", name, len(src), a>>20)
		}
		if err == nil && len(out) > limit {
			t.Errorf("%s: %d bytes out of a %d limit", name, len(out), limit)
		}
	}
}

// FuzzDecompress feeds every decoder the same hostile block: no output beyond the limit, no
// allocation sized by a header (the fuzz script caps the address space).
func FuzzDecompress(f *testing.F) {
	const limit = 64 << 10
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(bytes.Repeat([]byte("zlib block "), 500))
	w.Close()
	hdr := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0, 0xff, 0x12, 0xd9, 0x41}
	xzTwo := append([]byte(nil), hdr...)
	for _, prop := range []byte{12, 40} {
		xzTwo = append(append(xzTwo, 2, 0x00, xzFilterLZMA2, 1, prop, 0, 0, 0, 0, 0, 0, 0), 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', '!', 0x00, 0, 0)
	}
	for _, seed := range []struct {
		id  uint16
		src []byte
	}{
		{compGzip, z.Bytes()},
		{compXz, xzTwo},
		{compZstd, zstdFrame(31, []byte("hello!"))},
		{compZstd, append(zstdFrame(17, []byte("a")), zstdFrame(30, []byte("b"))...)},
		{compLz4, []byte{0x60, 'h', 'e', 'l', 'l', 'o', '!'}},
		{compLzo, []byte{0x17, 'h', 'e', 'l', 'l', 'o', '!', 0x11, 0, 0}},
	} {
		f.Add(seed.id, seed.src)
	}
	decs := map[uint16]decompressor{}
	for _, id := range []uint16{compGzip, compXz, compLz4, compLzo, compZstd} {
		d, err := newDecompressor(id, limit)
		if err != nil {
			f.Fatal(err)
		}
		decs[id] = d
	}
	f.Fuzz(func(t *testing.T, id uint16, src []byte) {
		d := decs[id%7]
		if d == nil {
			d = decs[compXz]
		}
		if out, err := d.decompress(src, limit); err == nil && len(out) > limit {
			t.Fatalf("decoder %d: %d bytes out of a %d limit", id, len(out), limit)
		}
	})
}
