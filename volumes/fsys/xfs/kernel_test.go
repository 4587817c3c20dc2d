package xfs

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestKernelMount compares every entry of the kernel-filled v5 fixture with the kernel's own loop mount
// of it: type, mode, owners, sizes, allocated blocks, times, inode numbers, link grouping, targets,
// device numbers, xattrs and every byte of every file.
func TestKernelMount(t *testing.T) {
	for _, name := range []string{"v5", "v5-1k"} {
		t.Run(name, func(t *testing.T) {
			img := imageFile(t, name)
			mnt := loopMount(t, img)
			ours := openFile(t, img)
			for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true}) {
				t.Error(d)
			}
		})
	}
}
