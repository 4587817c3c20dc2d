package volumes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// fileDisk is a raw image file used as a disk.
type fileDisk struct {
	*os.File
	size int64
}

func (f fileDisk) Size() int64 { return f.size }

func openDisk(t *testing.T, path string) Disk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fileDisk{f, st.Size()}
}

// corpus returns the acceptance corpus directory, skipping the test when it is absent.
func corpus(t testing.TB) string {
	t.Helper()
	dir := testfix.Corpus(t)
	if dir == "" {
		t.Skip("acceptance corpus not present")
	}
	return dir
}

// fixture decompresses testdata/volumes/<name>.gz into a temp file and returns its path.
func fixture(t testing.TB, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(out, testfix.Image(t, name), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// tool runs an external reader, skipping the test when it is not installed.
func tool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return out
}

func open(t testing.TB, paths ...string) *Set {
	t.Helper()
	var disks []Disk
	for _, p := range paths {
		disks = append(disks, openDisk(t.(*testing.T), p))
	}
	s, err := Open(disks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t testing.TB, v *Volume) []byte {
	t.Helper()
	b := make([]byte, v.Size())
	if n, err := v.ReadAt(b, 0); n != len(b) {
		t.Fatalf("%s: read %d of %d bytes: %v", v.ID, n, len(b), err)
	}
	return b
}

// mkdirTempShared makes a temp dir shared by several tests of this binary and removed by TestMain.
func mkdirTempShared() (string, error) {
	dir, err := os.MkdirTemp("", "volumes-test-")
	if err == nil {
		sharedTemp = append(sharedTemp, dir)
	}
	return dir, err
}

var sharedTemp []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range sharedTemp {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
