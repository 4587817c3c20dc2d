package xfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutOneName reads the fan-xfs image of testdata/hostile (make.sh, with the real mkfs tools: fanA
// nested 16 deep, each level with an empty fanB) as made and with every fanB re-pointed at its sibling
// fanA. As made, every level lists both names; re-pointed, fanB is a second name of fanA's directory:
// it must be left out of every listing and a lookup through it must fail with something other than
// "does not exist", while fanA stays readable down to the bottom.
func TestFanOutOneName(t *testing.T) {
	cases, err := hostile.FanCases("xfs", fanImage(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		repointed := i > 0
		t.Run(c.Name, func(t *testing.T) {
			f, err := Open(c.Disks[0], c.Disks[0].Size())
			if err != nil {
				t.Fatal(err)
			}
			dir := "."
			for level := 0; level < 16; level++ {
				ents, err := f.ReadDir(dir)
				if err != nil {
					t.Fatalf("ReadDir %s: %v", dir, err)
				}
				var names []string
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), "fan") { // not lost+found
						names = append(names, e.Name())
					}
				}
				want := []string{"fanA", "fanB"}
				if repointed {
					want = []string{"fanA"}
				}
				if !slices.Equal(names, want) {
					t.Fatalf("ReadDir %s = %v, want %v", dir, names, want)
				}
				_, err = f.Lstat(path.Join(dir, "fanB", "x"))
				switch {
				case repointed && (err == nil || errors.Is(err, fs.ErrNotExist)):
					t.Fatalf("Lstat %s fanB/x: %v, want a second-link error", dir, err)
				case !repointed && !errors.Is(err, fs.ErrNotExist):
					t.Fatalf("Lstat %s fanB/x: %v, want does not exist", dir, err)
				}
				dir = path.Join(dir, "fanA")
			}
			if _, err := f.Lstat(dir); err != nil || strings.Count(dir, "fanA") != 16 {
				t.Fatalf("Lstat %s: %v", dir, err)
			}
		})
	}
}

// fanImage returns the fan-xfs image of testdata/hostile, unpacked.
func fanImage(t *testing.T) []byte {
	t.Helper()
	gz, err := os.ReadFile(filepath.Join(testfix.RepoRoot(t), "testdata", "hostile", "fan-xfs.img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkFanLevels walks fanA down 16 levels of f: every level lists fanA and fanB, except level
// refused, which lists fanA only and refuses a lookup through fanB as damage (not as not-exist).
func checkFanLevels(t *testing.T, f fsys.FS, refused int) {
	t.Helper()
	dir := "."
	for level := 0; level < 16; level++ {
		ents, err := f.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir %s: %v", dir, err)
		}
		var names []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "fan") {
				names = append(names, e.Name())
			}
		}
		want := []string{"fanA", "fanB"}
		if level == refused {
			want = want[:1]
		}
		if !slices.Equal(names, want) {
			t.Fatalf("level %d: ReadDir %s = %v, want %v", level, dir, names, want)
		}
		_, err = f.Lstat(path.Join(dir, "fanB"))
		if level == refused && (err == nil || errors.Is(err, fs.ErrNotExist)) {
			t.Fatalf("level %d: Lstat %s fanB: %v, want a second-link error", level, dir, err)
		}
		if level != refused && err != nil {
			t.Fatalf("level %d: Lstat %s fanB: %v", level, dir, err)
		}
		dir = path.Join(dir, "fanA")
	}
}
