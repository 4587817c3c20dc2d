package wof_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"github.com/vmdkmount/vmdkmount/volumes/internal/wof"
)

var algs = []struct {
	alg      wof.Algorithm
	compress string
}{
	{wof.XPRESS4K, "xpress"}, {wof.XPRESS8K, "xpress"}, {wof.XPRESS16K, "xpress"}, {wof.LZX, "lzx"},
}

// mapCache is a test Cache that counts its hits, and those of chunks (not table pages).
type mapCache struct {
	mu              sync.Mutex
	m               map[int64][]byte
	hits, chunkHits int
}

func (c *mapCache) Get(k int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[k]
	if ok {
		c.hits++
		if k >= 0 {
			c.chunkHits++
		}
	}
	return b, ok
}

func (c *mapCache) Put(k int64, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = b
}

// chunks returns the chunks in the cache.
func (c *mapCache) chunks() map[int64]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int64]bool{}
	for k := range c.m {
		if k >= 0 {
			out[k] = true
		}
	}
	return out
}

// TestNothingPastTheRead: a read ending a byte into an LZX chunk, in a larger buffer, writes
// nothing past its end, although chunks before it decode in place in the buffer.
func TestNothingPastTheRead(t *testing.T) {
	data := wimres.Sample(t, 1<<20)
	res := wimres.Capture(t, data, "lzx", wof.LZX.ChunkSize())
	r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(len(data)), wof.LZX, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for end := 8<<15 + 1; end < len(data); end += 1 << 15 {
		for i := range buf {
			buf[i] = 0xA5
		}
		if _, err := r.ReadAt(buf[:end], 0); err != nil || !bytes.Equal(buf[:end], data[:end]) {
			t.Fatalf("read of %d bytes: %v", end, err)
		}
		if rest := buf[end:]; !bytes.Equal(rest, bytes.Repeat([]byte{0xA5}, len(rest))) {
			t.Fatalf("a read of %d bytes wrote past its end", end)
		}
	}
}

// TestResources reads wimlib's resources of every WOF algorithm whole and at scattered offsets,
// with and without a cache, and compares with the source bytes.
func TestResources(t *testing.T) {
	data := wimres.Sample(t, 333_333)
	for _, a := range algs {
		res := wimres.Capture(t, data, a.compress, a.alg.ChunkSize())
		for _, cache := range []*mapCache{nil, {m: map[int64][]byte{}}} {
			var c wof.Cache
			if cache != nil {
				c = cache
			}
			r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(len(data)), a.alg, c)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(data)+10)
			n, err := r.ReadAt(got, 0)
			if n != len(data) || err != io.EOF || !bytes.Equal(got[:n], data) {
				t.Fatalf("%v: read %d bytes (%v), equal %v", a.alg, n, err, bytes.Equal(got[:n], data))
			}
			for off := 1; off < len(data); off += 12345 {
				p := make([]byte, 9999)
				n, err := r.ReadAt(p, int64(off))
				if err != nil && err != io.EOF || !bytes.Equal(p[:n], data[off:min(off+9999, len(data))]) {
					t.Fatalf("%v: read at %d: %d bytes, %v", a.alg, off, n, err)
				}
			}
			if cache != nil && cache.hits == 0 {
				t.Fatalf("%v: the cache was never used", a.alg)
			}
		}
	}
}

// TestHostileTables damages a real chunk table: offsets going backwards, past the stream, a chunk
// larger than its uncompressed size, a table larger than the stream. Each read fails cleanly.
func TestHostileTables(t *testing.T) {
	data := wimres.Sample(t, 100_000)
	res := wimres.Capture(t, data, "xpress", 4096)
	n := (len(data) + 4095) / 4096
	table := (n - 1) * 4
	cases := map[string]func(b []byte){
		"backwards":   func(b []byte) { binary.LittleEndian.PutUint32(b[8:], binary.LittleEndian.Uint32(b[4:])-1) },
		"past end":    func(b []byte) { binary.LittleEndian.PutUint32(b[8:], uint32(len(b))) },
		"huge chunk":  func(b []byte) { binary.LittleEndian.PutUint32(b[8:], binary.LittleEndian.Uint32(b[4:])+5000) },
		"empty chunk": func(b []byte) { binary.LittleEndian.PutUint32(b[8:], binary.LittleEndian.Uint32(b[4:])) },
		"garbage":     func(b []byte) { clear(b[table+int(binary.LittleEndian.Uint32(b[4:])):][:40]) },
	}
	for name, damage := range cases {
		b := bytes.Clone(res)
		damage(b)
		r, err := wof.NewReader(bytes.NewReader(b), int64(len(b)), int64(len(data)), wof.XPRESS4K, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadAt(make([]byte, len(data)), 0); err == nil || err == io.EOF {
			t.Errorf("%s: read all gave %v", name, err)
		} else if !errors.Is(err, wof.ErrCorrupt) {
			t.Errorf("%s: %v does not wrap ErrCorrupt", name, err)
		}
	}
	// A stream too short for the table its size needs is refused at once.
	if _, err := wof.NewReader(bytes.NewReader(res[:10]), 10, 1<<40, wof.LZX, nil); !errors.Is(err, wof.ErrCorrupt) {
		t.Errorf("1 TiB claimed over 10 bytes: %v", err)
	}
	if _, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), 10, wof.Algorithm(9), nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("unknown algorithm: %v", err)
	}
}

// FuzzChunkTable reads a whole stream of a fuzzed size and algorithm from fuzzed bytes. The seeds
// are small resources and the size is bounded: each new input the engine keeps is minimized by
// running the target once per byte it tries to remove, so a 14 KB seed read up to 4 MiB at a time
// left it minimizing for most of its time (600 runs in 100 s).
func FuzzChunkTable(f *testing.F) {
	data := wimres.Sample(f, 9000)
	f.Add(wimres.Capture(f, data, "xpress", 4096), uint32(len(data)), uint8(0))
	f.Add(wimres.Capture(f, data, "lzx", 32768), uint32(len(data)), uint8(1))
	f.Fuzz(func(t *testing.T, res []byte, size uint32, alg uint8) {
		size %= 1 << 18 // 64 XPRESS4K chunks, 8 LZX ones
		r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(size), wof.Algorithm(alg%4), nil)
		if err != nil {
			return
		}
		p := make([]byte, 20000) // reads that cover some chunks whole and some in part
		for off := int64(0); off < int64(size); off += int64(len(p)) {
			if _, err := r.ReadAt(p, off); err != nil {
				return
			}
		}
	})
}

// TestLargeTable builds a 4 GiB + 1 byte LZX stream (one real wimlib chunk of zeros repeated,
// then a one-byte stored chunk), whose table has 8-byte entries, and reads across its end.
func TestLargeTable(t *testing.T) {
	const cs = 32768
	zero := wimres.Chunks(t, wimres.Capture(t, make([]byte, 2*cs), "lzx", cs), 2*cs, cs)[0]
	size := int64(1<<32 + 1)
	n := int(size / cs) // full chunks; the last, one byte, is stored
	var res bytes.Buffer
	e := make([]byte, 8)
	for i := 1; i <= n; i++ {
		binary.LittleEndian.PutUint64(e, uint64(i*len(zero)))
		res.Write(e)
	}
	for i := 0; i < n; i++ {
		res.Write(zero)
	}
	res.WriteByte('X')
	r, err := wof.NewReader(bytes.NewReader(res.Bytes()), int64(res.Len()), size, wof.LZX, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 20)
	k, err := r.ReadAt(p, size-11)
	if k != 11 || err != io.EOF || p[10] != 'X' || !bytes.Equal(p[:10], make([]byte, 10)) {
		t.Fatalf("read across the end: %d bytes %q, %v", k, p[:k], err)
	}
	if k, err := r.ReadAt(p, 70000*cs-5); k != len(p) || err != nil || !bytes.Equal(p, make([]byte, len(p))) {
		t.Fatalf("read in the middle: %d bytes %q, %v", k, p[:k], err)
	}
}

// BenchmarkReadAt reads a 1 MiB resource in the 128 KiB requests FUSE sends, through Reader's
// parallel chunk decoding.
func BenchmarkReadAt(b *testing.B) {
	data := wimres.Sample(b, 1<<20)
	for _, a := range []struct {
		alg      wof.Algorithm
		compress string
	}{{wof.XPRESS4K, "xpress"}, {wof.LZX, "lzx"}} {
		b.Run(a.alg.String(), func(b *testing.B) {
			res := wimres.Capture(b, data, a.compress, a.alg.ChunkSize())
			r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(len(data)), a.alg, nil)
			if err != nil {
				b.Fatal(err)
			}
			p := make([]byte, 128<<10)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for off := int64(0); off < int64(len(data)); off += int64(len(p)) {
					if _, err := r.ReadAt(p, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
