package ext4

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// fixtures lists the committed images (testdata/ext4/*.img.gz).
func fixtures(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(testfix.RepoRoot(t), "testdata", "ext4", "*.img.gz"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no ext4 fixtures found: %v", err)
	}
	return m
}

// gunzipTemp decompresses a fixture into a temporary file and returns its path.
func gunzipTemp(t testing.TB, gz string) string {
	t.Helper()
	in, err := os.Open(gz)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(gz), ".gz"))
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

// openImage opens an image file with our reader.
func openImage(t testing.TB, img string) *FS {
	t.Helper()
	return openSnapshot(t, img, Options{})
}

// mountRO loop-mounts img read-only with noatime on a fresh directory; it skips when not root.
func mountRO(t testing.TB, img string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop mount needs root")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-o", "loop,ro,noatime", img, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount %s: %v: %s", filepath.Base(img), err, out)
	}
	t.Cleanup(func() { testfix.Unmount(t, mnt) })
	return mnt
}

// hostIno is the inode number behind a host FileInfo.
func hostIno(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
