package ext4

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// countingReader counts the reads that start at each offset of the image.
type countingReader struct {
	r  io.ReaderAt
	mu sync.Mutex
	at map[int64]int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.at[off]++
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// Looking up every name of a large directory without an htree index, in listing order (what ls -l
// does through the mount), reads each of its blocks a bounded number of times, even when the cache
// of whole listings cannot keep it (a name is looked up in a sibling directory of the same cache shard
// between the names). Scanning the whole directory per lookup read each block thousands of times. The inode
// numbers found are the kernel's.
func TestLinearLookupInListingOrder(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	const entries, siblings = 6000, 64
	src := t.TempDir()
	big := filepath.Join(src, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		if err := os.WriteFile(filepath.Join(big, testfix.BigDirName(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range siblings {
		d := filepath.Join(src, fmt.Sprintf("s%02d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "linear.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^dir_index,^has_journal", "-N", "8192",
		"-d", src, img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	file, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: file, at: map[int64]int{}}
	// A listing cache far smaller than the directory: 100 entries a shard.
	f, err := OpenWith(cr, st.Size(), Options{DirCache: 16 * 100})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bigIn := in0(t, f, "big")
	if bigIn.flags&flagIndex != 0 || bigIn.st.Size <= 4*htreeMinBlocks*int64(f.sb.blockSize) {
		t.Fatalf("fixture directory: flags %#x, %d bytes; want a large one without an index", bigIn.flags, bigIn.st.Size)
	}
	sibling := ""
	for i := range siblings {
		if in0(t, f, fmt.Sprintf("s%02d", i)).ino%16 == bigIn.ino%16 {
			sibling = fmt.Sprintf("s%02d/absent", i)
		}
	}
	if sibling == "" {
		t.Fatal("no sibling directory shares the big directory's cache shard")
	}
	names := streamAll(t, f, "big", 500)
	if len(names) != entries {
		t.Fatalf("listed %d names, want %d", len(names), entries)
	}
	blocks, err := f.dirBlocksOf(bigIn)
	if err != nil {
		t.Fatal(err)
	}
	cr.mu.Lock()
	clear(cr.at)
	cr.mu.Unlock()

	inos := map[string]uint64{}
	for _, name := range names {
		fi, err := f.Lstat("big/" + name)
		if err != nil {
			t.Fatal(err)
		}
		inos[name] = fi.Sys().(*fsys.Stat).Ino
		if _, err := f.Lstat(sibling); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: %v, want not found", sibling, err)
		}
	}
	bs := int64(f.sb.blockSize)
	most, total := 0, 0
	for _, r := range blocks.runs {
		for k := range int64(r.length) {
			n := cr.at[(int64(r.physical)+k)*bs]
			most, total = max(most, n), total+n
		}
	}
	nblocks := bigIn.st.Size / bs
	t.Logf("%d lookups in a %d-block directory: %d block reads, at most %d of one block", entries, nblocks, total, most)
	if most > 3 || int64(total) > 2*nblocks {
		t.Errorf("lookups in listing order read one directory block %d times, %d reads of %d blocks in all", most, total, nblocks)
	}
	if _, err := f.Lstat("big/absent"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent name: %v, want not found", err)
	}

	mnt := mountRO(t, img)
	for i := 0; i < entries; i += 97 {
		var kst syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(mnt, "big", names[i]), &kst); err != nil {
			t.Fatal(err)
		}
		if kst.Ino != inos[names[i]] {
			t.Errorf("%s: inode %d, the kernel says %d", names[i], inos[names[i]], kst.Ino)
		}
	}
}
