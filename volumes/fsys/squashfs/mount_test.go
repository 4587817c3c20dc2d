package squashfs

import (
	"bytes"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestMatchesKernelMount compares every fixture with the kernel's own squashfs driver: names, types,
// inode numbers, link counts, modes, owners, sizes, allocation, mtimes, device numbers, symlink targets,
// xattrs and file contents (sequential, positional and concurrent reads).
func TestMatchesKernelMount(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			img := fixtureBytes(t, name)
			mnt := mountImage(t, img)
			ours, err := Open(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			defer ours.Close()
			diffs := treecmp.Compare(ours, mnt, treecmp.Options{
				CompareIno: true,
				// squashfs stores only the mtime; the kernel copies it into atime and ctime.
				Ignore: treecmp.Atime | treecmp.Ctime | treecmp.Btime,
			})
			for _, d := range diffs {
				t.Error(d)
			}
		})
	}
}
