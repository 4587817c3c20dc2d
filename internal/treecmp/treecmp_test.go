package treecmp

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

func TestIdenticalTreeHasNoDiffs(t *testing.T) {
	dir := hostTree(t)
	noDiffs(t, Compare(mirror(t, dir), dir, Options{CompareIno: true}))
}

// Each case changes one property of our side and expects Compare to report that field, and only it.
func TestEachFieldIsDetected(t *testing.T) {
	cases := []struct {
		name   string
		field  Field
		paths  []string
		opt    Options
		mutate func(f *fakeFS)
	}{
		{"missing entry", Presence, []string{"lonely"}, Options{}, func(f *fakeFS) {
			delete(f.stats, "lonely")
		}},
		{"extra entry", Presence, []string{"sub/ghost"}, Options{}, func(f *fakeFS) {
			f.stats["sub/ghost"] = &fsys.Stat{Mode: fsys.S_IFREG | 0o644}
		}},
		{"type", Type, []string{"fifo"}, Options{}, func(f *fakeFS) {
			f.stats["fifo"].Mode = fsys.S_IFSOCK | 0o644
			f.wrongType["fifo"] = fs.ModeSocket // keep ReadDir consistent with Lstat
		}},
		{"size", Size, []string{"empty"}, Options{}, func(f *fakeFS) { f.stats["empty"].Size = 3 }},
		{"dir size", DirSize, []string{"sub"}, Options{}, func(f *fakeFS) { f.stats["sub"].Size++ }},
		{"blocks", Blocks, []string{"empty"}, Options{}, func(f *fakeFS) { f.stats["empty"].AllocatedSize += 4096 }},
		{"perm", Perm, []string{"sub/small.txt"}, Options{}, func(f *fakeFS) { f.stats["sub/small.txt"].Mode ^= 0o004 }},
		{"sticky", Special, []string{"sub"}, Options{}, func(f *fakeFS) { f.stats["sub"].Mode |= fsys.S_ISVTX }},
		{"setuid", Special, []string{"lonely"}, Options{}, func(f *fakeFS) { f.stats["lonely"].Mode |= fsys.S_ISUID }},
		{"uid", Uid, []string{"empty"}, Options{}, func(f *fakeFS) { f.stats["empty"].Uid = 4242 }},
		{"gid", Gid, []string{"empty"}, Options{}, func(f *fakeFS) { f.stats["empty"].Gid = 4242 }},
		{"nlink", Nlink, []string{"lonely"}, Options{}, func(f *fakeFS) { f.stats["lonely"].Nlink = 2 }},
		{"ino", Ino, []string{"lonely"}, Options{CompareIno: true, Ignore: Links}, func(f *fakeFS) { f.stats["lonely"].Ino = 999999999 }},
		{"hard link split", Links, []string{"big.bin", "sub/hard.bin"}, Options{}, func(f *fakeFS) {
			f.stats["sub/hard.bin"].Ino = 999999999
		}},
		{"hard link invented", Links, []string{"lonely", "empty"}, Options{}, func(f *fakeFS) {
			f.stats["lonely"].Ino = f.stats["empty"].Ino
		}},
		{"mtime", Mtime, []string{"big.bin"}, Options{}, func(f *fakeFS) { f.stats["big.bin"].Mtime = f.stats["big.bin"].Mtime.Add(time.Nanosecond) }},
		{"atime", Atime, []string{"sub"}, Options{}, func(f *fakeFS) { f.stats["sub"].Atime = f.stats["sub"].Atime.Add(-time.Hour) }},
		{"ctime", Ctime, []string{"."}, Options{}, func(f *fakeFS) { f.stats["."].Ctime = time.Time{} }},
		{"symlink target", Target, []string{"link"}, Options{}, func(f *fakeFS) { f.files["link"].Data = []byte("sub/small.tx_") }},
		{"xattr value", Xattr, []string{"sub/small.txt"}, Options{}, func(f *fakeFS) { f.xattrs["sub/small.txt"]["user.color"] = []byte("red") }},
		{"xattr missing", Xattr, []string{"sub/small.txt"}, Options{}, func(f *fakeFS) { delete(f.xattrs["sub/small.txt"], "user.shape") }},
		{"xattr extra", Xattr, []string{"lonely"}, Options{}, func(f *fakeFS) { f.xattrs["lonely"] = map[string][]byte{"user.x": nil} }},
		{"content byte", Content, []string{"big.bin"}, Options{}, func(f *fakeFS) {
			d := append([]byte(nil), f.files["big.bin"].Data...)
			d[40000] ^= 1
			f.files["big.bin"].Data = d
		}},
		{"content short", Content, []string{"sub/small.txt"}, Options{}, func(f *fakeFS) { f.files["sub/small.txt"].Data = []byte("hell") }},
		{"readat without EOF", Content, []string{"big.bin", "sub/hard.bin", "empty", "lonely", "sub/small.txt"}, Options{}, func(f *fakeFS) {
			f.wrapFile = func(_ string, file fs.File) fs.File { return noEOFAt{file.(fsys.File)} }
		}},
		{"unsorted listing", Listing, []string{"sub/deeper", "sub/hard.bin", "big.bin", "chardev", "empty", "fifo", "link", "lonely", "sub"}, Options{}, func(f *fakeFS) {
			f.reverse = true
		}},
		{"entry type", Listing, []string{"link"}, Options{}, func(f *fakeFS) { f.wrongType["link"] = 0 }},
		{"lstat error", Error, []string{"sub/small.txt"}, Options{}, func(f *fakeFS) { f.lstatErr["sub/small.txt"] = errBroken }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := hostTree(t)
			f := mirror(t, dir)
			tc.mutate(f)
			expectOnly(t, Compare(f, dir, tc.opt), tc.field, tc.paths...)
		})
	}
}

// noEOFAt breaks the io.ReaderAt contract: a short read at the end comes back without io.EOF.
type noEOFAt struct{ fsys.File }

func (n noEOFAt) ReadAt(p []byte, off int64) (int, error) {
	k, err := n.File.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return k, err
}

func TestBtimeDetected(t *testing.T) {
	dir := hostTree(t)
	if _, ok := hostBtime(dir); !ok {
		t.Skip("host filesystem reports no birth time")
	}
	f := mirror(t, dir)
	f.stats["empty"].Btime = time.Time{}
	expectOnly(t, Compare(f, dir, Options{}), Btime, "empty")
}

func TestRdevDetected(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := hostTree(t)
	f := mirror(t, dir)
	if got := f.stats["chardev"].Rdev; unix.Major(got) != 4 || unix.Minor(got) != 70 {
		t.Fatalf("host chardev is %d:%d", unix.Major(got), unix.Minor(got))
	}
	f.stats["chardev"].Rdev = unix.Mkdev(4, 71)
	diffs := Compare(f, dir, Options{})
	expectOnly(t, diffs, Rdev, "chardev")
	if !strings.Contains(diffs[0].String(), "4:71") || !strings.Contains(diffs[0].String(), "4:70") {
		t.Errorf("diff does not name both devices: %s", diffs[0])
	}
}

func TestReportsEveryDifference(t *testing.T) {
	dir := hostTree(t)
	f := mirror(t, dir)
	f.stats["empty"].Uid = 7
	f.stats["sub/small.txt"].Gid = 7
	f.stats["lonely"].Mode ^= 0o100
	delete(f.stats, "sub/deeper")
	diffs := Compare(f, dir, Options{})
	if got, want := fieldsOf(diffs), Uid|Gid|Perm|Presence; got != want {
		t.Fatalf("fields %s, want %s: %v", got, want, diffs)
	}
	if len(diffs) != 4 {
		t.Fatalf("want 4 diffs, got %v", diffs)
	}
}

func TestOptionsSwitchFieldsOff(t *testing.T) {
	dir := hostTree(t)
	f := mirror(t, dir)
	f.stats["empty"].Uid = 7
	f.stats["empty"].Gid = 7
	f.stats["empty"].Ctime = time.Time{}
	f.stats["sub/extra"] = &fsys.Stat{Mode: fsys.S_IFREG}
	f.xattrs["sub/small.txt"]["user.colour"] = f.xattrs["sub/small.txt"]["user.color"]
	delete(f.xattrs["sub/small.txt"], "user.color")
	if len(Compare(f, dir, Options{})) == 0 {
		t.Fatal("mutations not seen without options")
	}
	opt := Options{
		Ignore:     Uid | Gid | Ctime,
		IgnorePath: func(p string) bool { return p == "sub/extra" },
		MapXattr: func(h string) (string, bool) {
			if h == "user.color" {
				return "user.colour", true
			}
			return h, true
		},
	}
	noDiffs(t, Compare(f, dir, opt))
}

func TestIgnoredPathSkipsSubtree(t *testing.T) {
	dir := hostTree(t)
	f := mirror(t, dir)
	delete(f.stats, "sub/small.txt")
	f.stats["sub"].Uid = 99
	diffs := Compare(f, dir, Options{IgnorePath: func(p string) bool { return p == "sub" }})
	noDiffs(t, diffs)
}

func TestTimeGranularity(t *testing.T) {
	dir := hostTree(t)
	f := mirror(t, dir)
	// Host mtime is 1600000000.25; 1600000000.75 truncates to the same second, .0 - 1ns does not.
	f.stats["lonely"].Mtime = time.Unix(1600000000, 750_000_000)
	if d := Compare(f, dir, Options{}); fieldsOf(d) != Mtime {
		t.Fatalf("exact comparison: %v", d)
	}
	noDiffs(t, Compare(f, dir, Options{TimeGranularity: time.Second}))
	f.stats["lonely"].Mtime = time.Unix(1599999999, 999_999_999)
	expectOnly(t, Compare(f, dir, Options{TimeGranularity: time.Second}), Mtime, "lonely")
}

func TestMaxDiffs(t *testing.T) {
	dir := hostTree(t)
	f := mirror(t, dir)
	for _, st := range f.stats {
		st.Uid = 12345
	}
	if d := Compare(f, dir, Options{MaxDiffs: 2}); len(d) != 2 {
		t.Fatalf("want 2 diffs, got %d", len(d))
	}
}

func TestFieldString(t *testing.T) {
	if s := (Uid | Xattr).String(); s != "uid|xattr" {
		t.Errorf("got %q", s)
	}
	if len(fieldNames) != 22 || Field(1<<(len(fieldNames)-1)) != Error {
		t.Errorf("fieldNames out of step with the Field constants")
	}
}

func TestMissingHostDir(t *testing.T) {
	f := mirror(t, t.TempDir())
	d := Compare(f, filepath.Join(t.TempDir(), "nope"), Options{})
	expectOnly(t, d, Error, ".")
}
