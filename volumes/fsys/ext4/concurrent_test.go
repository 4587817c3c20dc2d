package ext4

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// TestConcurrentReads reads every file of a fixture from many goroutines at random offsets, with
// caches small enough to evict all the time, and checks each read against a sequential read.
func TestConcurrentReads(t *testing.T) {
	b := fixtureBytes(t, "ext4-1k-32bit")
	v, err := OpenWith(bytes.NewReader(b), int64(len(b)), Options{InodeCache: 16, DirCache: 32})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	err = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			want[p], err = fs.ReadFile(v, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := range want {
		names = append(names, p)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				p := names[r.IntN(len(names))]
				fl, err := v.Open(p)
				if err != nil {
					t.Error(err)
					return
				}
				data := want[p]
				off := int64(0)
				if len(data) > 0 {
					off = r.Int64N(int64(len(data)))
				}
				buf := make([]byte, r.IntN(9000)+1)
				n, err := fl.(io.ReaderAt).ReadAt(buf, off)
				if err != nil && err != io.EOF {
					t.Error(err)
				}
				if !bytes.Equal(buf[:n], data[off:min(int64(len(data)), off+int64(len(buf)))]) {
					t.Errorf("%s at %d: wrong bytes", p, off)
				}
				fl.Close()
			}
		}()
	}
	wg.Wait()
}

// TestFSInterface runs the standard library's io/fs conformance checks on a fixture.
func TestFSInterface(t *testing.T) {
	v := openBytes(t, fixtureBytes(t, "ext4-inline"))
	// The root holds dangling links, which TestFS would report as unopenable, so test below it.
	for dir, expect := range map[string][]string{
		"dir":        {"small.txt", "hundred.txt", "sub/random.bin", "sub/hardlink2", "sub/deeper"},
		"Ünïcødé-目录": {"ファイル名.txt"},
	} {
		sub, err := fs.Sub(v, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(sub, expect...); err != nil {
			t.Fatal(err)
		}
	}
	var _ fsys.FS = v
}
