package treecmp

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// fakeFS is an fsys.FS over an fstest.MapFS, with the full Stat of every entry held beside it, so a
// test can change one property and check that Compare notices exactly that.
type fakeFS struct {
	files     fstest.MapFS // content and symlink targets
	stats     map[string]*fsys.Stat
	xattrs    map[string]map[string][]byte
	lstatErr  map[string]error
	reverse   bool                                 // ReadDir returns names in reverse order
	wrongType map[string]fs.FileMode               // ReadDir entry type overrides
	wrapFile  func(name string, f fs.File) fs.File // lets a test break ReadAt
}

func (f *fakeFS) info(name string) (*fsys.Info, error) {
	if err := f.lstatErr[name]; err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	st, ok := f.stats[name]
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	base := path.Base(name)
	if name == "." {
		base = "."
	}
	return &fsys.Info{EntryName: base, St: *st}, nil
}

func (f *fakeFS) Lstat(name string) (fs.FileInfo, error) { return f.info(name) }

func (f *fakeFS) Stat(name string) (fs.FileInfo, error) {
	r, err := fsys.Resolve(f, name, true)
	if err != nil {
		return nil, err
	}
	return f.info(r)
}

func (f *fakeFS) Open(name string) (fs.File, error) {
	r, err := fsys.Resolve(f, name, true)
	if err != nil {
		return nil, err
	}
	file, err := f.files.Open(r)
	if err != nil {
		return nil, err
	}
	file = eofAt{file.(fsys.File)}
	if f.wrapFile != nil {
		file = f.wrapFile(r, file)
	}
	return file, nil
}

// eofAt makes MapFS's ReadAt past the end answer io.EOF, as os.File does, instead of fs.ErrInvalid.
type eofAt struct{ fsys.File }

func (e eofAt) ReadAt(p []byte, off int64) (int, error) {
	fi, err := e.Stat()
	if err != nil {
		return 0, err
	}
	if off >= fi.Size() {
		return 0, io.EOF
	}
	return e.File.ReadAt(p, off)
}

func (f *fakeFS) ReadLink(name string) (string, error) { return f.files.ReadLink(name) }

type fakeEntry struct {
	info *fsys.Info
	typ  fs.FileMode
}

func (e *fakeEntry) Name() string               { return e.info.Name() }
func (e *fakeEntry) IsDir() bool                { return e.info.IsDir() }
func (e *fakeEntry) Type() fs.FileMode          { return e.typ }
func (e *fakeEntry) Info() (fs.FileInfo, error) { return e.info, nil }

func (f *fakeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	for p := range f.stats {
		if p != "." && path.Dir(p) == name {
			fi, err := f.info(p)
			if err != nil {
				fi = &fsys.Info{EntryName: path.Base(p), St: *f.stats[p]}
			}
			typ, ok := f.wrongType[p]
			if !ok {
				typ = fi.Type()
			}
			out = append(out, &fakeEntry{info: fi, typ: typ})
		}
	}
	sort.Slice(out, func(i, j int) bool { return (out[i].Name() < out[j].Name()) != f.reverse })
	return out, nil
}

func (f *fakeFS) ListXattr(name string) ([]string, error) {
	var names []string
	for n := range f.xattrs[name] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (f *fakeFS) GetXattr(name, attr string) ([]byte, error) {
	v, ok := f.xattrs[name][attr]
	if !ok {
		return nil, fsys.ErrNoXattr
	}
	return v, nil
}

func (f *fakeFS) Usage() fsys.Usage { return fsys.Usage{} }
func (f *fakeFS) Close() error      { return nil }

// mirror builds a fakeFS holding exactly what the host shows for dir, read independently of Compare.
func mirror(t *testing.T, dir string) *fakeFS {
	t.Helper()
	f := &fakeFS{files: fstest.MapFS{}, stats: map[string]*fsys.Stat{}, xattrs: map[string]map[string][]byte{},
		lstatErr: map[string]error{}, wrongType: map[string]fs.FileMode{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		mf := &fstest.MapFile{}
		switch {
		case d.Type().IsRegular():
			// Read first: the read may move atime once, before the Lstat below records it.
			if mf.Data, err = os.ReadFile(p); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			mf.Data = []byte(target)
		}
		var h unix.Stat_t
		if err := unix.Lstat(p, &h); err != nil {
			return err
		}
		mf.Mode = fsys.FileMode(h.Mode)
		if !d.IsDir() {
			f.files[rel] = mf
		}
		st := &fsys.Stat{Ino: h.Ino, Nlink: uint32(h.Nlink), Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, Rdev: h.Rdev,
			Size: h.Size, AllocatedSize: h.Blocks * 512, Atime: ts(h.Atim), Mtime: ts(h.Mtim), Ctime: ts(h.Ctim)}
		if bt, ok := hostBtime(p); ok {
			st.Btime = bt
		}
		f.stats[rel] = st
		names, err := hostListXattr(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			v, err := hostGetXattr(p, n)
			if err != nil {
				return err
			}
			if f.xattrs[rel] == nil {
				f.xattrs[rel] = map[string][]byte{}
			}
			f.xattrs[rel][n] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// hostTree makes a directory with one of each entry kind the tests mutate.
func hostTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755))
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	must(os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644))
	must(os.WriteFile(filepath.Join(dir, "sub", "small.txt"), []byte("hello\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o640))
	must(os.Link(filepath.Join(dir, "big.bin"), filepath.Join(dir, "sub", "hard.bin")))
	must(os.WriteFile(filepath.Join(dir, "lonely"), []byte("x"), 0o644))
	must(os.Symlink("sub/small.txt", filepath.Join(dir, "link")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(unix.Setxattr(filepath.Join(dir, "sub", "small.txt"), "user.color", []byte("blue"), 0))
	must(unix.Setxattr(filepath.Join(dir, "sub", "small.txt"), "user.shape", []byte("round"), 0))
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(dir, "chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 70))))
	}
	// Whole-second mtime, so granularity tests know where truncation lands.
	mt := time.Unix(1600000000, 250_000_000)
	must(os.Chtimes(filepath.Join(dir, "lonely"), time.Time{}, mt))
	// Atime ahead of mtime and ctime: relatime then leaves it alone when the tests read the tree.
	future := unix.NsecToTimespec(time.Now().Add(time.Hour).UnixNano())
	omit := unix.Timespec{Nsec: unix.UTIME_OMIT}
	must(filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{future, omit}, unix.AT_SYMLINK_NOFOLLOW)
	}))
	return dir
}

func fieldsOf(diffs []Diff) Field {
	var f Field
	for _, d := range diffs {
		f |= d.Field
	}
	return f
}

// expectOnly fails unless diffs is non-empty and every diff is of field f on one of paths.
func expectOnly(t *testing.T, diffs []Diff, f Field, paths ...string) {
	t.Helper()
	if len(diffs) == 0 {
		t.Fatalf("no difference found, want %s", f)
	}
	for _, d := range diffs {
		if d.Field != f || !slices.Contains(paths, d.Path) {
			t.Errorf("unexpected diff %s (want only %s on %q)", d, f, paths)
		}
	}
}

func noDiffs(t *testing.T, diffs []Diff) {
	t.Helper()
	for _, d := range diffs {
		t.Errorf("unexpected diff %s", d)
	}
}

var errBroken = errors.New("broken on purpose")
