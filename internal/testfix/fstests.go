package testfix

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Overlay is an image with some byte ranges replaced, read without copying the whole image: fuzz
// targets patch metadata of a fixture many thousands of times.
type Overlay struct {
	Base    []byte
	Patches []Patch
}

// Patch replaces len(Data) bytes at Off.
type Patch struct {
	Off  int64
	Data []byte
}

// ReadAt reads the patched image.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(o.Base)) {
		return 0, io.EOF
	}
	n := copy(p, o.Base[off:])
	for _, pt := range o.Patches {
		lo, hi := max(off, pt.Off), min(off+int64(n), pt.Off+int64(len(pt.Data)))
		if lo < hi {
			copy(p[lo-off:hi-off], pt.Data[lo-pt.Off:hi-pt.Off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Tool runs a command with LC_ALL=C.UTF-8 and TZ=UTC and returns its standard output, skipping the
// test when the command is not installed and failing it when the command fails.
func Tool(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	return ToolEnv(tb, nil, name, args...)
}

// ToolEnv is Tool with more environment variables ("NAME=value").
func ToolEnv(tb testing.TB, env []string, name string, args ...string) string {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		tb.Skipf("%s not installed", name)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// WalkAndRead walks a tree and reads every regular file through, returning how many it read.
func WalkAndRead(fsys fs.FS) (int, error) {
	files := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fl, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer fl.Close()
		files++
		_, err = io.Copy(io.Discard, fl)
		return err
	})
	return files, err
}

// ConcurrentReadAt reads the files of want (path → content) from 8 goroutines at once, each at its own
// offsets (stride apart, len bytes each), through the files' ReadAt, and checks every byte.
func ConcurrentReadAt(t *testing.T, fsys fs.FS, want map[string][]byte, stride, length int64) {
	t.Helper()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for p, body := range want {
				f, err := fsys.Open(p)
				if err != nil {
					t.Error(err)
					return
				}
				ra := f.(io.ReaderAt)
				for off := int64(g * 41); off < int64(len(body)); off += stride {
					buf := make([]byte, length)
					n, err := ra.ReadAt(buf, off)
					if err != nil && err != io.EOF {
						t.Error(err)
						return
					}
					if !bytes.Equal(buf[:n], body[off:off+int64(n)]) {
						t.Errorf("%s at %d: mismatch", p, off)
						return
					}
				}
				f.Close()
			}
		}(g)
	}
	wg.Wait()
}
