package longtest_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// needTools skips when a tool is missing, except under CI, where every tool must be installed.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (CI must have it)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// run runs a tool with a fixed locale and time zone and fails the test when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, tail(out))
	}
	return out
}

// runErr runs a tool and returns its combined output, for tools whose partial failure is expected.
func runErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC", "MTOOLS_SKIP_CHECK=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// tail keeps the last lines of a long tool output for a message.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 20 {
		lines = append([]string{"…"}, lines[len(lines)-20:]...)
	}
	return strings.Join(lines, "\n")
}

// sparseImage makes an empty image file of size bytes (a hole until a tool writes it).
func sparseImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// mountPoint is a fresh directory of its own for one mount.
func mountPoint(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "longtest-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// unmountAtCleanup unmounts dir when the test ends, lazily if it is still busy.
func unmountAtCleanup(t *testing.T, dir string) {
	t.Cleanup(func() { unmount(t, dir) })
}

func unmount(t *testing.T, dir string) {
	if !isMounted(dir) {
		return
	}
	if out, err := runErr("umount", dir); err != nil {
		t.Errorf("umount: %v: %s", err, out)
		runErr("umount", "-l", dir)
	}
}

func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// kernelMount loop-mounts img at a new directory with the given options, unmounted at cleanup.
func kernelMount(t *testing.T, img, fstype, opts string) string {
	t.Helper()
	dir := mountPoint(t)
	run(t, "mount", "-t", fstype, "-o", opts, img, dir)
	unmountAtCleanup(t, dir)
	return dir
}

// loopDevice attaches img to a loop device (read-only when ro). The device is detached by the
// returned function or at cleanup, whichever comes first, and only once: a second detach could hit a
// device someone else attached meanwhile under the same number.
func loopDevice(t *testing.T, img string, ro bool) (string, func()) {
	t.Helper()
	args := []string{"-f", "--show"}
	if ro {
		args = append(args, "-r")
	}
	out := strings.Fields(run(t, "losetup", append(args, img)...))
	if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "/dev/") {
		t.Fatalf("losetup printed no device: %q", out)
	}
	dev := out[len(out)-1] // after any warnings
	var once sync.Once
	detach := func() {
		once.Do(func() {
			if out, err := runErr("losetup", "-d", dev); err != nil {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		})
	}
	t.Cleanup(detach)
	return dev, detach
}

// openImage opens img with a reader's Open; the file and the FS are closed at cleanup.
func openImage(t *testing.T, img string, open func(io.ReaderAt, int64) (fsys.FS, error)) fsys.FS {
	t.Helper()
	return testfix.OpenImage(t, img, 0, open)
}

// maxReported caps the differences printed, so a broken reader cannot drown the log.
const maxReported = 300

// compare runs treecmp, reports every difference that keep accepts (all when keep is nil) and returns
// how many host entries were compared.
func compare(t *testing.T, ours fsys.FS, host string, opt treecmp.Options, keep func(treecmp.Diff) bool) int {
	t.Helper()
	n := countEntries(t, host, opt.IgnorePath)
	reported := 0
	for _, d := range treecmp.Compare(ours, host, opt) {
		if keep != nil && !keep(d) {
			continue
		}
		if reported++; reported <= maxReported {
			t.Error(d)
		}
	}
	if reported > maxReported {
		t.Errorf("… %d differences in all, %d shown", reported, maxReported)
	}
	return n
}

// countEntries counts the host entries the comparison visits, the root included.
func countEntries(t *testing.T, root string, ignore func(string) bool) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && ignore != nil && ignore(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return n
}
