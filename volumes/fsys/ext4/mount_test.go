package ext4

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestFixturesMatchKernel compares every committed image, entry by entry, with the kernel's read-only
// loop mount of the same bytes: metadata, inode numbers, xattrs, link targets and content.
func TestFixturesMatchKernel(t *testing.T) {
	for _, gz := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(gz), ".img.gz")
		t.Run(name, func(t *testing.T) {
			img := gunzipTemp(t, gz)
			ours := openImage(t, img)
			mnt := mountRO(t, img)
			diffs := treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true})
			for _, d := range diffs {
				t.Error(d)
			}
			if t.Failed() {
				return
			}
			// The kernel view has the kinds of entries the fixture script made, so the comparison was not vacuous.
			seen := map[fs.FileMode]int{}
			n := 0
			err := fs.WalkDir(ours, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				seen[d.Type()]++
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantMin := 430 // the 400-entry directory and the rest
			if name == "ext2-rev0" {
				wantMin = 30
			}
			if n < wantMin || seen[fs.ModeSymlink] < 4 || seen[fs.ModeDir] < 9 || seen[fs.ModeNamedPipe] != 1 ||
				seen[fs.ModeSocket] != 1 || seen[fs.ModeDevice] != 1 || seen[fs.ModeDevice|fs.ModeCharDevice] != 2 {
				t.Errorf("walk saw %d entries, types %v", n, seen)
			}
		})
	}
}
