package wof_test

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"github.com/vmdkmount/vmdkmount/volumes/internal/wof"
)

// TestReadAhead reads wimlib's resources in order, 32 KiB at a time as io.Copy does (one LZX chunk
// per read, which read alone would decode on one core): the bytes are the source's, most chunks
// come from the cache the read-ahead filled, and no goroutine outlives the reads.
func TestReadAhead(t *testing.T) {
	data := wimres.Sample(t, 3<<20+777)
	before := runtime.NumGoroutine()
	for _, a := range []struct {
		alg      wof.Algorithm
		compress string
	}{{wof.XPRESS4K, "xpress"}, {wof.LZX, "lzx"}} {
		res := wimres.Capture(t, data, a.compress, a.alg.ChunkSize())
		cache := &mapCache{m: map[int64][]byte{}}
		r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(len(data)), a.alg, cache)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%v: read %d bytes in order (%v), equal %v", a.alg, len(got), err, bytes.Equal(got, data))
		}
		chunks := len(data) / a.alg.ChunkSize()
		if cache.chunkHits < chunks/2 {
			t.Errorf("%v: %d of %d chunks came from the read-ahead", a.alg, cache.chunkHits, chunks)
		}
	}
	waitGoroutines(t, before)
}

// TestNoReadAheadWhenRandom: reads out of order decode what they read and nothing ahead.
func TestNoReadAheadWhenRandom(t *testing.T) {
	data, r, cache := cachedLZX(t, 2<<20)
	const cs = 32 << 10
	touched := map[int64]bool{}
	for k := 0; k < 40; k++ {
		off := int64(k*7919*1021) % int64(len(data)-50000)
		p := make([]byte, 40000)
		if _, err := r.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+40000]) {
			t.Fatalf("read at %d: %v", off, err)
		}
		for i := off / cs; i*cs < off+40000; i++ {
			touched[i] = true
		}
	}
	time.Sleep(50 * time.Millisecond) // a batch, had one started, would have finished
	for i := range cache.chunks() {
		if !touched[i] {
			t.Errorf("chunk %d was decoded, but no read reached it", i)
		}
	}
}

// TestNoReadAheadForLargeReads: reads in order of 1016 KiB, as FUSE makes them with the kernel's
// read-ahead, decode their own chunks; only the chunks a read covers in part reach the cache.
func TestNoReadAheadForLargeReads(t *testing.T) {
	data, r, cache := cachedLZX(t, 5<<20)
	const cs, n = 32 << 10, 1016 << 10
	split := map[int64]bool{}
	p := make([]byte, n)
	for off := int64(0); off < int64(len(data)); off += n {
		k, err := r.ReadAt(p, off)
		if (err != nil && err != io.EOF) || !bytes.Equal(p[:k], data[off:off+int64(k)]) {
			t.Fatalf("read at %d: %v", off, err)
		}
		split[off/cs], split[(off+int64(k)-1)/cs] = true, true
	}
	time.Sleep(50 * time.Millisecond) // a batch, had one started, would have finished
	for i := range cache.chunks() {
		if !split[i] {
			t.Errorf("chunk %d, which a read covered whole, was decoded into the cache", i)
		}
	}
}

// cachedLZX returns size bytes of sample data and a Reader with a cache of their LZX resource.
func cachedLZX(t *testing.T, size int) ([]byte, *wof.Reader, *mapCache) {
	t.Helper()
	data := wimres.Sample(t, size)
	res := wimres.Capture(t, data, "lzx", wof.LZX.ChunkSize())
	cache := &mapCache{m: map[int64][]byte{}}
	r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(len(data)), wof.LZX, cache)
	if err != nil {
		t.Fatal(err)
	}
	return data, r, cache
}

// waitGoroutines fails the test unless the goroutine count comes back to n within a second.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for start := time.Now(); runtime.NumGoroutine() > n; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > time.Second {
			t.Fatalf("%d goroutines left running, %d before", runtime.NumGoroutine(), n)
		}
	}
}

// BenchmarkReadInOrder reads a 4 MiB resource 32 KiB at a time, as io.Copy does, with read-ahead
// (a cache) and without.
func BenchmarkReadInOrder(b *testing.B) {
	data := wimres.Sample(b, 4<<20)
	for _, a := range []struct {
		alg      wof.Algorithm
		compress string
	}{{wof.XPRESS4K, "xpress"}, {wof.LZX, "lzx"}} {
		res := wimres.Capture(b, data, a.compress, a.alg.ChunkSize())
		for _, ahead := range []bool{false, true} {
			name := a.alg.String() + "/plain"
			if ahead {
				name = a.alg.String() + "/ahead"
			}
			b.Run(name, func(b *testing.B) {
				p := make([]byte, 32<<10)
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					var c wof.Cache
					if ahead {
						c = &mapCache{m: map[int64][]byte{}}
					}
					r, err := wof.NewReader(bytes.NewReader(res), int64(len(res)), int64(len(data)), a.alg, c)
					if err != nil {
						b.Fatal(err)
					}
					for off := int64(0); off < int64(len(data)); off += int64(len(p)) {
						if _, err := r.ReadAt(p, off); err != nil && err != io.EOF {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
