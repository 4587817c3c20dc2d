package ntfs

import (
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

var fixtures = []string{"basic", "c4k"}

// TestFixturesMatchNTFS3g compares every entry of each fixture (type, size, blocks, mode, owner, link
// count, inode number, times, symlink targets, streams as xattrs, device numbers and content) with
// ntfs-3g's read-only mount of the same image, with and without the system files shown.
func TestFixturesMatchNTFS3g(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			img := fixture(t, name)
			compareWithNTFS3g(t, img, Options{})
		})
		t.Run(name+"/system-files", func(t *testing.T) {
			img := fixture(t, name)
			// ntfs-3g lists the entries of $Extend but cannot look them up (lstat fails), so
			// they are left out; everything else must match.
			compareWithNTFS3g(t, img, Options{ShowSystemFiles: true}, "show_sys_files")
		})
	}
}

func compareWithNTFS3g(t *testing.T, img string, opt Options, mountOpts ...string) {
	host := mountNTFS3g(t, img, mountOpts...)
	compareTrees(t, openImage(t, img, opt), host)
}

// compareTrees reports every difference between our reader and an ntfs-3g mount.
func compareTrees(t *testing.T, ours fsys.FS, host string) {
	t.Helper()
	diffs := treecmp.Compare(ours, host, treecmp.Options{
		CompareIno: true,
		IgnorePath: func(name string) bool { return strings.HasPrefix(name, "$Extend/") },
	})
	for _, d := range diffs {
		t.Error(d)
	}
}
