package ntfs

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// compareUsage checks Usage against statfs of the ntfs-3g mount: block size, total and free clusters.
func compareUsage(t *testing.T, v fsys.FS, host string) {
	t.Helper()
	var sf unix.Statfs_t
	if err := unix.Statfs(host, &sf); err != nil {
		t.Fatal(err)
	}
	u := v.Usage()
	if int64(u.BlockSize) != sf.Bsize || u.Blocks != sf.Blocks || u.FreeBlocks != sf.Bfree {
		t.Errorf("usage: block %d, %d blocks, %d free; ntfs-3g: block %d, %d blocks, %d free",
			u.BlockSize, u.Blocks, u.FreeBlocks, sf.Bsize, sf.Blocks, sf.Bfree)
	}
	if u.Files != sf.Files || u.FreeFiles != sf.Ffree {
		t.Errorf("usage: %d files, %d free; ntfs-3g: %d files, %d free", u.Files, u.FreeFiles, sf.Files, sf.Ffree)
	}
	if u.NameMax != uint32(sf.Namelen) {
		t.Errorf("name max %d, ntfs-3g %d", u.NameMax, sf.Namelen)
	}
}

// TestFixtureUsage checks Usage and the label against ntfs-3g and blkid's view of the fixtures.
func TestFixtureUsage(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			img := fixture(t, name)
			v := openImage(t, img, Options{})
			compareUsage(t, v, mountNTFS3g(t, img))
			if got := v.Usage().Label; got != "Fixture "+name {
				t.Errorf("label %q", got)
			}
		})
	}
}
