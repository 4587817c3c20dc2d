package xfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func fixturePath(t testing.TB, name string) string {
	return filepath.Join(testfix.RepoRoot(t), "testdata", "xfs", name)
}

// unpacked caches decompressed fixtures: several tests and every fuzz target start from them.
var unpacked sync.Map // name → []byte

// gunzipFixture returns a private copy of the decompressed bytes of testdata/xfs/<name>.
func gunzipFixture(t testing.TB, name string) []byte {
	t.Helper()
	return bytes.Clone(sharedFixture(t, name))
}

// sharedFixture returns the cached decompressed bytes of testdata/xfs/<name>; callers must not modify them.
func sharedFixture(t testing.TB, name string) []byte {
	t.Helper()
	if b, ok := unpacked.Load(name); ok {
		return b.([]byte)
	}
	b := testfix.Gunzip(t, "xfs", name)
	unpacked.Store(name, b)
	return b
}

// fixtureFS opens a fixture in memory with our reader (tests that need no image file).
func fixtureFS(t testing.TB, name string) *FS {
	t.Helper()
	b := sharedFixture(t, name+".img.gz")
	f, err := open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return f
}

// imageFile writes a fixture to a private temporary file (which a loop mount may then use).
func imageFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".img")
	if err := os.WriteFile(p, gunzipFixture(t, name+".img.gz"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openFile opens an image file with our reader.
func openFile(t testing.TB, p string) *FS {
	t.Helper()
	return openReplayed(t, p, Options{NoReplay: true})
}

// loopMount mounts an image read-only through the kernel; the mount goes away in t.Cleanup. nouuid: the
// same fixture may be mounted by a parallel test elsewhere on the machine.
func loopMount(t testing.TB, img string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("loop mounts need root")
	}
	dir, err := os.MkdirTemp("", "xfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "xfs", "-o", "loop,ro,noatime,norecovery,nouuid", img, dir).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		t.Fatalf("cannot loop-mount %s: %v: %s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir
}
