package xfs

import (
	"fmt"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

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

// TestUsage compares Usage with the kernel's statfs of the mount and with xfs_db's label and UUID.
func TestUsage(t *testing.T) {
	img := imageFile(t, "v5")
	mnt := loopMount(t, img)
	u := openFile(t, img).Usage()
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if int64(u.BlockSize) != st.Bsize || u.Blocks != st.Blocks || int64(u.NameMax) != st.Namelen {
		t.Errorf("usage bsize %d blocks %d namemax %d, kernel %d %d %d", u.BlockSize, u.Blocks, u.NameMax, st.Bsize, st.Blocks, st.Namelen)
	}
	// The kernel holds back a few blocks per AG for its own allocations; the on-disk count is what we have.
	if u.FreeBlocks < st.Bfree || u.FreeBlocks > st.Bfree+st.Blocks/50 {
		t.Errorf("free blocks %d, kernel %d", u.FreeBlocks, st.Bfree)
	}
	if u.Files-u.FreeFiles != st.Files-st.Ffree {
		t.Errorf("inodes in use %d, kernel %d", u.Files-u.FreeFiles, st.Files-st.Ffree)
	}
	out, err := exec.Command("xfs_db", "-r", "-c", "label", "-c", "uuid", img).Output()
	if err != nil {
		t.Skipf("xfs_db: %v", err)
	}
	want := fmt.Sprintf("label = %q\nUUID = %s\n", u.Label, u.UUID)
	if string(out) != want {
		t.Errorf("xfs_db says %q, we say %q", out, want)
	}
}
