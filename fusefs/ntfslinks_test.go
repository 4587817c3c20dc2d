package fusefs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
	"golang.org/x/sys/unix"
)

// ntfs3gImage makes a 16 MiB NTFS image with mkntfs, lets build write into it through a read-write
// ntfs-3g mount (streams_interface=windows, so FILE:STREAM names a stream), and returns the image
// and a VMDK copy of it.
func ntfs3gImage(t *testing.T, build func(rw string) error) (img, vmdk string) {
	t.Helper()
	needMounts(t)
	needTools(t, "ntfs-3g", "mkntfs")
	dir := t.TempDir()
	img = filepath.Join(dir, "ntfs.img")
	run(t, "truncate", "-s", "16M", img)
	run(t, "mkntfs", "-F", "-f", "-q", img)
	rw := filepath.Join(dir, "rw")
	os.Mkdir(rw, 0o755)
	run(t, "ntfs-3g", "-o", "streams_interface=windows", img, rw)
	err := build(rw)
	run(t, "umount", rw)
	if err != nil {
		t.Fatal(err)
	}
	vmdk = filepath.Join(dir, "ntfs.vmdk")
	run(t, "qemu-img", "convert", "-O", "vmdk", img, vmdk)
	return img, vmdk
}

// mountNTFS3g mounts img read-only with ntfs-3g and extra options, unmounted when the test ends.
func mountNTFS3g(t *testing.T, img string, opts string) string {
	t.Helper()
	ref := t.TempDir()
	run(t, "ntfs-3g", "-o", "ro"+opts, img, ref)
	t.Cleanup(func() { exec.Command("umount", ref).Run() })
	return ref
}

// TestNTFSJunctionsMatchNTFS3G: junctions and absolute symlinks point into our mount as they point
// into ntfs-3g's (never at a host path), relative symlinks stay relative, and reading through them
// reaches the volume's files.
func TestNTFSJunctionsMatchNTFS3G(t *testing.T) {
	img, vmdk := ntfs3gImage(t, func(rw string) error {
		mk := func(p string, isDir bool, rp []byte) error {
			full := filepath.Join(rw, p)
			var err error
			if isDir {
				err = os.MkdirAll(full, 0o755)
			} else {
				err = os.WriteFile(full, nil, 0o644)
			}
			if err == nil && rp != nil {
				err = unix.Setxattr(full, "system.ntfs_reparse_data", rp, 0)
			}
			return err
		}
		return errors.Join(
			mk("Users/bob", true, nil),
			os.WriteFile(filepath.Join(rw, "Users/bob/x.txt"), []byte("bob's file"), 0o644),
			mk("a/b", true, nil),
			mk("a/b/junction", true, inspecttest.LinkReparse(0xA0000003, `\??\C:\Users`, false)),
			mk("a/b/elsewhere", true, inspecttest.LinkReparse(0xA0000003, `\??\D:\Data`, false)),
			mk("a/abs", false, inspecttest.LinkReparse(0xA000000C, `\??\C:\Users\bob\x.txt`, false)),
			mk("a/rel", false, inspecttest.LinkReparse(0xA000000C, `..\Users\bob\x.txt`, true)))
	})

	ours, _ := mountVolume(t, vmdk, "")
	ref := mountNTFS3g(t, img, "")

	for _, l := range []string{"a/b/junction", "a/b/elsewhere", "a/abs", "a/rel"} {
		theirs, err := os.Readlink(filepath.Join(ref, l))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Readlink(filepath.Join(ours, l))
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if strings.TrimPrefix(got, ours) != strings.TrimPrefix(theirs, ref) || filepath.IsAbs(got) && !strings.HasPrefix(got, ours+"/") {
			t.Errorf("%s -> %q, ntfs-3g -> %q", l, got, theirs)
		}
		// Like ntfs-3g, the link's size is the length of the target readlink returns.
		if st, err := os.Lstat(filepath.Join(ours, l)); err != nil || st.Size() != int64(len(got)) {
			t.Errorf("%s: size %v, target of %d bytes (%v)", l, st.Size(), len(got), err)
		}
	}
	for _, p := range []string{"a/abs", "a/rel", "a/b/junction/bob/x.txt"} {
		if b, err := os.ReadFile(filepath.Join(ours, p)); err != nil || string(b) != "bob's file" {
			t.Errorf("reading through %s: %q, %v", p, b, err)
		}
	}
}
