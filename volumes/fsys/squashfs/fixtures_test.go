package squashfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir is the repository's testdata/squashfs folder.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "squashfs")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// fixtureNames lists the committed images (plain .sqfs and gzipped .sqfs.gz).
func fixtureNames(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(fixtureDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".sqfs") || strings.HasSuffix(e.Name(), ".sqfs.gz") {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatal("no squashfs fixtures")
	}
	return out
}

// fixtureBytes returns an image's bytes, gunzipped when needed.
func fixtureBytes(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(name, ".gz") {
		return raw
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mountImage loop-mounts a copy of img read-only and returns the mount point; it skips when not root.
func mountImage(t testing.TB, img []byte) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop mounting needs root")
	}
	tmp := t.TempDir()
	file := filepath.Join(tmp, "image.sqfs")
	if err := os.WriteFile(file, img, 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro,noatime", file, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return mnt
}
