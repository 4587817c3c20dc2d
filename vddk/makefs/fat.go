package makefs

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// fatMin keeps a FAT32 above 65525 clusters (below that, readers take it for FAT16) at every cluster size
// go-diskfs picks.
const fatMin = 64 * mib

// fatCluster is the cluster size go-diskfs picks for a FAT32 of size bytes.
func fatCluster(size int64) int64 {
	switch {
	case size <= 260*1000*1000:
		return 512
	case size <= 8<<30:
		return 4096
	case size <= 16<<30:
		return 8192
	case size <= 32<<30:
		return 16384
	}
	return 32768
}

// fatNeed is what the entries take on a FAT32 with clusters of c bytes: whole clusters per file, and
// per folder its 32-byte slots (one short name plus a long-name slot per 13 UTF-16 units, ".", "..").
func fatNeed(entries []entry, c int64) int64 {
	slots := map[string]int64{".": 2}
	var n int64
	for _, e := range entries {
		if e.mode.IsDir() {
			slots[e.rel] += 2
		} else {
			n += roundUp(e.size, c)
		}
		units := int64(len(path.Base(e.rel))) // go-diskfs counts UTF-8 bytes
		slots[path.Dir(e.rel)] += 1 + (units+12)/13
	}
	for _, s := range slots {
		n += roundUp(max(s*32, 1), c)
	}
	return n
}

// fatSize is the default FAT32 size: what the content needs plus 10% and the tables, as virt-make-fs
// leaves a margin for the guest to write into.
func fatSize(entries []entry) int64 {
	size := int64(fatMin)
	for range 3 { // the cluster size depends on the size: settle it
		c := fatCluster(size)
		need := fatNeed(entries, c)
		fats := 2 * 4 * (need/c + 2)
		size = max(roundUp(need+need/10+fats+mib, mib), fatMin)
	}
	return size
}

// buildFAT writes a FAT32 of the kept entries at start (size bytes, or the default when 0).
func buildFAT(st backend.Storage, f *os.File, start, size int64, o Options, root string, kept []entry) (int64, error) {
	if size == 0 {
		size = fatSize(kept)
	}
	if o.Grow {
		size += roundUp(o.Size, mib)
	}
	if size < fatMin {
		return 0, fmt.Errorf("a FAT32 needs at least %d bytes, --size leaves it %d", fatMin, size)
	}
	if need := fatNeed(kept, fatCluster(size)); need > size {
		return 0, fmt.Errorf("the files need %d bytes, more than the FAT32 of %d bytes holds", need, size)
	}
	label := o.Label
	if label == "" {
		label = "NO NAME"
	}
	fat, err := fat32.Create(st, size, start, 512, label, false)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, copyBuf)
	for _, e := range kept {
		if e.mode.IsDir() {
			if err := fat.Mkdir(e.rel); err != nil {
				return 0, fmt.Errorf("%s: %w", e.rel, err)
			}
			continue
		}
		if err := fatCopy(fat, root, e, buf); err != nil {
			return 0, fmt.Errorf("%s: %w", e.rel, err)
		}
	}
	// Times, and the repairs go-diskfs needs, in one pass over the folders it wrote.
	mtimes := make(map[string]time.Time, len(kept))
	for _, e := range kept {
		mtimes[e.rel] = e.mtime
	}
	if err := fatFix(f, start, mtimes); err != nil {
		return 0, err
	}
	return size, nil
}

// fatCopy streams one file into the FAT32.
func fatCopy(fat *fat32.FileSystem, root string, e entry, buf []byte) error {
	in, err := os.Open(filepath.Join(root, filepath.FromSlash(e.rel)))
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fat.OpenFile(e.rel, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf)
	if err != nil {
		out.Close()
		return err
	}
	if n != e.size {
		out.Close()
		return fmt.Errorf("read %d bytes, the file had %d when listed", n, e.size)
	}
	return out.Close()
}
