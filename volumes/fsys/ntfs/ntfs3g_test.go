package ntfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var fixtures = []string{"basic", "c4k", "s4k"}

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
			compareWithNTFS3g(t, img, Options{ShowSystemFiles: true}, "show_sys_files")
		})
	}
}

func compareWithNTFS3g(t *testing.T, img string, opt Options, mountOpts ...string) {
	host := mountNTFS3g(t, img, mountOpts...)
	compareTrees(t, openImage(t, img, opt), host)
}

// compareTrees reports every difference between our reader and an ntfs-3g mount. Two kinds of entry
// differ by design and are checked here instead of by treecmp:
//   - reparse symlinks with absolute targets: ntfs-3g prefixes its mount point, we the volume root
//     ("/"), so the host target must be the mount point followed by ours;
//   - reparse points with tags other than symlink and junction: ntfs-3g shows a dangling symlink
//     ("unsupported reparse tag …"), we the plain file or directory underneath.
//
// ntfs-3g lists the entries of $Extend but cannot look them up, so that subtree is left out.
func compareTrees(t *testing.T, ours fsys.FS, host string) {
	t.Helper()
	special := map[string]bool{}
	filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		hostTarget, err := os.Readlink(p)
		if err != nil {
			t.Errorf("%s: host readlink: %v", rel, err)
			return nil
		}
		switch {
		case strings.HasPrefix(hostTarget, host+"/"):
			special[rel] = true
			want := strings.TrimPrefix(hostTarget, host)
			got, err := ours.ReadLink(rel)
			if err != nil || got != want {
				t.Errorf("%s: target %q, %v; ntfs-3g shows %q (mount point + %q)", rel, got, err, hostTarget, want)
			}
			if fi, err := ours.Lstat(rel); err != nil || fi.Size() != int64(len(want)) {
				t.Errorf("%s: lstat %v, %v; want a symlink of size %d", rel, fi, err, len(want))
			}
		case strings.HasPrefix(hostTarget, "unsupported reparse tag"):
			special[rel] = true
			if fi, err := ours.Lstat(rel); err != nil || fi.Mode()&fs.ModeSymlink != 0 {
				t.Errorf("%s: lstat %v, %v; want the entry under the unknown reparse point", rel, fi, err)
			}
		}
		return nil
	})
	diffs := treecmp.Compare(ours, host, treecmp.Options{
		CompareIno: true,
		IgnorePath: func(name string) bool { return special[name] || strings.HasPrefix(name, "$Extend/") },
	})
	for _, d := range diffs {
		t.Error(d)
	}
}
