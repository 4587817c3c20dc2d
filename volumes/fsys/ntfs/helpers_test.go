package ntfs

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// fixture unpacks testdata/ntfs/<name>.img.gz into a temporary file and returns its path.
func fixture(t testing.TB, name string) string {
	t.Helper()
	in, err := os.Open(filepath.Join(testfix.RepoRoot(t), "testdata", "ntfs", name+".img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name+".img")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, zr); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openImage opens an image file with our reader; the file is closed at cleanup.
func openImage(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return testfix.OpenImage(t, img, 0, func(r io.ReaderAt, n int64) (*FS, error) {
		v, err := Open(r, n, opt)
		if err != nil {
			return nil, err
		}
		return v.(*FS), nil
	})
}

// mountNTFS3g mounts img read-only through ntfs-3g (the independent reader) and returns the mount
// point; it skips when not root or when ntfs-3g is missing.
func mountNTFS3g(t testing.TB, img string, extra ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting with ntfs-3g needs root")
	}
	bin, err := exec.LookPath("ntfs-3g")
	if err != nil {
		t.Skip("ntfs-3g is not installed")
	}
	dir, err := os.MkdirTemp("", "ntfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]string{"ro", "noatime", "streams_interface=xattr"}, extra...)
	if out, err := exec.Command(bin, "-o", strings.Join(opts, ","), img, dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Fatalf("ntfs-3g mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
			exec.Command("umount", "-l", dir).Run()
		}
		os.Remove(dir)
	})
	return dir
}

// sharedAcceptance returns ../shared/acceptance next to the repository, skipping when absent.
func sharedAcceptance(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(testfix.RepoRoot(t)), "shared", "acceptance")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("acceptance corpus not present")
	}
	return dir
}

// loopDevice attaches size bytes of file at off to a read-only loop device, detached at cleanup.
func loopDevice(t testing.TB, file string, off, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	out, err := exec.Command("losetup", "-f", "--show", "-r", "-o", strconv.FormatInt(off, 10),
		"--sizelimit", strconv.FormatInt(size, 10), file).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}
