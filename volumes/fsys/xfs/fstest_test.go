package xfs

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

// TestIOFSContract runs the standard library's io/fs conformance checks over fixture subtrees (the
// root holds dangling symlinks, which fstest cannot open): Open, ReadDir paging, Stat consistency,
// Seek and ReadAt on every file. Devices, fifos and sockets read as empty.
func TestIOFSContract(t *testing.T) {
	expect := map[string]string{"short": "f1", "modes": "m4755", "ünïcødé_dïr": "日本語のファイル名.txt"}
	for _, img := range []string{"v4", "v5"} {
		f := fixtureFS(t, img)
		for dir, file := range expect {
			sub, err := fs.Sub(f, dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(sub, file); err != nil {
				t.Errorf("%s %s: %v", img, dir, err)
			}
		}
	}
	f := fixtureFS(t, "v5")
	for _, p := range []string{"chardev", "fifo", "socket"} {
		b, err := fs.ReadFile(f, p)
		if err != nil || len(b) != 0 {
			t.Errorf("%s: read %d bytes, %v; want an empty read", p, len(b), err)
		}
	}
}
