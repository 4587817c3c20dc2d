package iso9660

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// TestMatchesSourceTree compares the Rock Ridge images with the tree they were built from: names,
// types, modes, owners, sizes, mtimes (Rock Ridge TF keeps whole seconds), device numbers, symlink
// targets and contents, and hard-link counts of non-directories.
func TestMatchesSourceTree(t *testing.T) {
	src := sourceTree(t)
	genisoLeftOut := map[string]bool{"dev/fifo": true, "dev/socket": true, "long-target": true,
		"rr_moved": true} // the kernel lists genisoimage's relocation folder; the source has none
	for _, tc := range []struct {
		name string
		// sharedIno: the image records PX serial numbers, so hard links share an inode number.
		sharedIno bool
		ignore    func(string) bool
	}{
		{"tree-xorriso", false, nil},
		{"tree-rrip112", true, nil},
		{"tree-genisoimage", false, func(p string) bool { return genisoLeftOut[p] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ours, _ := openFixture(t, tc.name)
			// Inode numbers and allocation are the image's own; -R records no xattrs; directory sizes are
			// extent lengths; atime and ctime changed while the tree was built. Directory link counts are
			// what each writer chose (xorriso writes 1), so Nlink is checked below for files only.
			ignore := treecmp.Blocks | treecmp.DirSize | treecmp.Xattr | treecmp.Atime | treecmp.Ctime |
				treecmp.Btime | treecmp.Nlink
			if !tc.sharedIno {
				ignore |= treecmp.Links
			}
			diffs := treecmp.Compare(ours, src, treecmp.Options{Ignore: ignore, TimeGranularity: time.Second,
				IgnorePath: tc.ignore})
			for _, d := range diffs {
				t.Error(d)
			}
			checkFileLinkCounts(t, ours, src, tc.ignore)
		})
	}
}

// checkFileLinkCounts compares the link count of every non-directory with the source tree's.
func checkFileLinkCounts(t *testing.T, ours fsys.FS, src string, ignore func(string) bool) {
	t.Helper()
	checked := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if ignore != nil && ignore(rel) {
			return nil
		}
		var hs syscall.Stat_t
		if err := syscall.Lstat(p, &hs); err != nil {
			return err
		}
		fi, err := ours.(interface {
			Lstat(string) (fs.FileInfo, error)
		}).Lstat(rel)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if got := fsys.StatOf(fi).Nlink; uint64(got) != uint64(hs.Nlink) {
			t.Errorf("%s: nlink ours=%d source=%d", rel, got, hs.Nlink)
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 3000 {
		t.Fatalf("only %d files checked", checked)
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatal(err)
	}
}
