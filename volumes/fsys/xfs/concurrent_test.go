package xfs

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// TestConcurrentUse runs whole-tree walks and interleaved reads of one file from several goroutines on a
// single FS (run with -race): the caches and the reader must not share unguarded state.
func TestConcurrentUse(t *testing.T) {
	f := fixtureFS(t, "v5")
	f.inodes = fsys.NewLRU[uint64, *inode](64) // small caches force evictions while others read
	f.extents = fsys.NewLRU[extentKey, []extent](256)
	f.dirs = fsys.NewLRU[uint64, *dirMap](64 << 10)
	want, err := readAllFile(f, "fragmented")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		if g < 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				walkAll(f)
			}()
		}
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			fl, err := f.Open("fragmented")
			if err != nil {
				t.Error(err)
				return
			}
			ra := fl.(io.ReaderAt)
			buf := make([]byte, 3000)
			for off := int64(g * 777); off < int64(len(want)); off += 9001 {
				n, err := ra.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d) differs from the sequential read", off)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func readAllFile(f *FS, name string) ([]byte, error) {
	fl, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	return io.ReadAll(fl)
}
