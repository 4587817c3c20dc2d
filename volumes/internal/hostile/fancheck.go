package hostile

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// FanImage returns testdata/hostile/fan-<kind>.img.gz unpacked (made by make.sh with the real mkfs tools:
// fanA nested 16 deep, each level with an empty fanB).
func FanImage(tb testing.TB, kind string) []byte {
	tb.Helper()
	return testfix.Gunzip(tb, "hostile", "fan-"+kind+".img.gz")
}

// CheckFanOutOneName reads the fan-<kind> image, through open, as made and with every fanB re-pointed at
// its sibling fanA. As made, every level lists both names; re-pointed, fanB is a second name of fanA's
// directory: it must be left out of every listing and a lookup through it must fail with something
// other than "does not exist", while fanA stays readable down to the bottom.
func CheckFanOutOneName(t *testing.T, kind string, open func(r io.ReaderAt, size int64) (fsys.FS, error)) {
	cases, err := FanCases(kind, FanImage(t, kind))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		repointed := i > 0
		t.Run(c.Name, func(t *testing.T) {
			f, err := open(c.Disks[0], c.Disks[0].Size())
			if err != nil {
				t.Fatal(err)
			}
			dir := "."
			for level := 0; level < 16; level++ {
				names := fanNames(t, f, dir)
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

// CheckFanLevels walks fanA down 16 levels of f: every level lists fanA and fanB, except level
// refused, which lists fanA only and refuses a lookup through fanB as damage (not as not-exist).
func CheckFanLevels(t *testing.T, f fsys.FS, refused int) {
	t.Helper()
	dir := "."
	for level := 0; level < 16; level++ {
		names := fanNames(t, f, dir)
		want := []string{"fanA", "fanB"}
		if level == refused {
			want = want[:1]
		}
		if !slices.Equal(names, want) {
			t.Fatalf("level %d: ReadDir %s = %v, want %v", level, dir, names, want)
		}
		_, err := f.Lstat(path.Join(dir, "fanB"))
		if level == refused && (err == nil || errors.Is(err, fs.ErrNotExist)) {
			t.Fatalf("level %d: Lstat %s fanB: %v, want a second-link error", level, dir, err)
		}
		if level != refused && err != nil {
			t.Fatalf("level %d: Lstat %s fanB: %v", level, dir, err)
		}
		dir = path.Join(dir, "fanA")
	}
}

// fanNames lists the fan entries of dir (not lost+found and the like).
func fanNames(t *testing.T, f fsys.FS, dir string) []string {
	t.Helper()
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
	return names
}
