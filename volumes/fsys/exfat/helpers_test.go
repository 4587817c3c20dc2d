package exfat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// fixture returns the decompressed exFAT image made by testdata/fat/make.sh.
func fixture(t testing.TB) []byte {
	t.Helper()
	return testfix.Gunzip(t, "fat", "exfat.img.gz")
}

func open(t testing.TB, b []byte) *FS {
	t.Helper()
	v, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return v.(*FS)
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return testfix.Tool(t, name, args...)
}

// mountFuse attaches a copy of img read-only to a loop device and mounts it with exfat-fuse; both are
// undone in Cleanup. It skips unless running as root with the tools present.
func mountFuse(t *testing.T, img []byte) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop mounts need root")
	}
	for _, tool := range []string{"losetup", "mount.exfat-fuse", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	p := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(run(t, "losetup", "-f", "--show", "-r", p))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	dir, err := os.MkdirTemp("", "exfat-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	// umask=022 gives the 0755 a kernel exfat mount shows by default; exfat-fuse's own default is 0777.
	run(t, "mount.exfat-fuse", "-o", "ro,noatime,umask=022", dev, dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
		os.Remove(dir)
	})
	return dir
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
