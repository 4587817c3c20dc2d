package volumes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestBtrfsMultiDevice makes two-device RAID1, four-device RAID10, three-device RAID5 and four-device
// RAID6 Btrfs filesystems on loop devices with mkfs.btrfs and the kernel, and checks that the set
// assembles them by filesystem UUID into one volume whose tree equals the kernel's ro,subvolid=5 mount.
func TestBtrfsMultiDevice(t *testing.T) {
	for _, name := range []string{"mkfs.btrfs", "mount"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not installed", name)
		}
	}
	for _, c := range []struct {
		profile string
		n       int
	}{{"raid1", 2}, {"raid10", 4}, {"raid5", 3}, {"raid6", 4}} {
		t.Run(c.profile, func(t *testing.T) {
			dir := t.TempDir()
			imgs, loops := testfix.LoopDevices(t, dir, c.n, 300<<20)
			run := func(name string, args ...string) {
				t.Helper()
				if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
					t.Fatalf("%s %v: %v\n%s", name, args, err, out)
				}
			}
			run("mkfs.btrfs", append([]string{"-q", "-f", "-L", c.profile, "-d", c.profile, "-m", c.profile}, loops...)...)
			var devOpts []string
			for _, l := range loops[1:] {
				devOpts = append(devOpts, "device="+l)
			}
			mnt := filepath.Join(dir, "mnt")
			os.Mkdir(mnt, 0o755)
			run("mount", "-o", strings.Join(append([]string{"compress=zstd"}, devOpts...), ","), loops[0], mnt)
			for i := 0; i < 6; i++ {
				p := filepath.Join(mnt, fmt.Sprintf("d%d", i%2), fmt.Sprintf("f%d.txt", i))
				os.MkdirAll(filepath.Dir(p), 0o755)
				body := strings.Repeat(fmt.Sprintf("file %d, spread over the stripes of %s\n", i, c.profile), 20000*(i+1))
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			os.Symlink("d0/f0.txt", filepath.Join(mnt, "link"))
			run("btrfs", "subvolume", "create", filepath.Join(mnt, "sub"))
			os.WriteFile(filepath.Join(mnt, "sub", "x"), []byte("in a subvolume\n"), 0o644)
			testfix.Unmount(t, mnt)
			run("mount", "-o", strings.Join(append([]string{"ro", "noatime", "subvolid=5"}, devOpts...), ","), loops[0], mnt)
			t.Cleanup(func() { testfix.Unmount(t, mnt) })

			s := open(t, imgs...)
			vs := s.Volumes()
			if len(vs) != 1 || vs[0].Filesystem.Type != "btrfs" || vs[0].Filesystem.Label != c.profile {
				t.Fatalf("volumes %s, want one btrfs (problems %v)", ids(vs), s.Problems())
			}
			tree, err := vs[0].OpenTree(TreeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			for _, d := range treecmp.Compare(tree, mnt, treecmp.Options{MaxDiffs: 30}) {
				t.Error(d)
			}

			// One device left out: every profile here survives that, and the tree reads the same.
			s = open(t, imgs[:len(imgs)-1]...)
			vs = s.Volumes()
			want := fmt.Sprintf("%d of its %d devices in the set", c.n-1, c.n)
			if len(vs) != 1 || len(s.Problems()) != 1 || !strings.Contains(s.Problems()[0], want) {
				t.Fatalf("degraded: volumes %s, problems %q; want one btrfs and a note of %q", ids(vs), s.Problems(), want)
			}
			degraded, err := vs[0].OpenTree(TreeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer degraded.Close()
			for _, d := range treecmp.Compare(degraded, mnt, treecmp.Options{MaxDiffs: 30}) {
				t.Error("degraded:", d)
			}
		})
	}
}
