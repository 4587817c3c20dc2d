package fat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// fixture returns a decompressed image from testdata/fat.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return testfix.Gunzip(t, "fat", name+".img.gz")
}

// tempImage writes an image where the external tools can read it.
func tempImage(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// scratchDir is a temporary directory for an extraction of thousands of small files: on tmpfs when
// the system has one (much faster on a busy disk), else under t.TempDir.
func scratchDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "fat-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// tool runs an external reader with a fixed locale and time zone; the test skips when it is missing.
func tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	// mtools defaults to code page 850 for short names; the kernel's vfat default is 437.
	rc := filepath.Join(t.TempDir(), "mtoolsrc")
	if err := os.WriteFile(rc, []byte("DEFAULT_CODEPAGE=437\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return testfix.ToolEnv(t, []string{"MTOOLSRC=" + rc, "MTOOLS_SKIP_CHECK=1"}, name, args...)
}

func openFixture(t testing.TB, name string) (*FS, []byte) {
	t.Helper()
	b := fixture(t, name)
	v, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	return v.(*FS), b
}

// walk lists every path of v (not the root) with its Stat.
func walk(t testing.TB, v fsys.FS) map[string]*fsys.Stat {
	t.Helper()
	out := map[string]*fsys.Stat{}
	var rec func(dir string)
	rec = func(dir string) {
		ents, err := v.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir %s: %v", dir, err)
		}
		for _, e := range ents {
			p := e.Name()
			if dir != "." {
				p = dir + "/" + p
			}
			fi, err := e.Info()
			if err != nil {
				t.Fatalf("Info %s: %v", p, err)
			}
			out[p] = fsys.StatOf(fi)
			if e.IsDir() {
				rec(p)
			}
		}
	}
	rec(".")
	return out
}
