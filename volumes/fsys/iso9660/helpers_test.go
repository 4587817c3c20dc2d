package iso9660

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// testdataDir is the repository's testdata folder.
func testdataDir(t testing.TB) string { return filepath.Join(testfix.RepoRoot(t), "testdata") }

// fixture returns a gunzipped ISO from testdata/iso9660.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return testfix.Gunzip(t, "iso9660", name+".iso.gz")
}

// openFixture opens a fixture with our reader and also writes it to a temporary file for the tools.
func openFixture(t testing.TB, name string) (fsys.FS, string) {
	t.Helper()
	img := fixture(t, name)
	f, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	file := filepath.Join(t.TempDir(), name+".iso")
	if err := os.WriteFile(file, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, file
}

// needTool skips when an external reader is not installed.
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// The source tree is built once per test binary and removed by TestMain.
var (
	srcOnce sync.Once
	srcDir  string
	srcErr  error
	srcTmp  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if srcTmp != "" {
		os.RemoveAll(srcTmp)
	}
	os.Exit(code)
}

// sourceTree rebuilds the tree the fixtures were made from (mknod and chown need root).
func sourceTree(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("rebuilding the source tree needs root")
	}
	script := filepath.Join(testdataDir(t), "squashfs", "mktree.sh")
	srcOnce.Do(func() {
		if srcTmp, srcErr = os.MkdirTemp("", "iso9660-src-"); srcErr != nil {
			return
		}
		srcDir = filepath.Join(srcTmp, "src")
		if out, err := exec.Command("bash", script, srcDir).CombinedOutput(); err != nil {
			srcErr = fmt.Errorf("mktree.sh: %v: %s", err, out)
		}
	})
	if srcErr != nil {
		t.Fatal(srcErr)
	}
	return srcDir
}
