package ext4

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// corpusImage opens an image of the shared acceptance corpus (../shared/acceptance next to the
// repository), skipping when the corpus is absent.
func corpusImage(t *testing.T, rel string) *FS {
	t.Helper()
	p := filepath.Join(filepath.Dir(testfix.RepoRoot(t)), "shared", "acceptance", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("acceptance corpus absent: %v", err)
	}
	return openImage(t, p)
}

func sha256Of(t *testing.T, f fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(f, name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// walkInodes returns path → inode number for every entry but the root.
func walkInodes(t *testing.T, f *FS) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fsys.StatOf(fi).Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lstat(t *testing.T, f *FS, name string) *fsys.Stat {
	t.Helper()
	fi, err := f.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fsys.StatOf(fi)
}

// The facts EXPECTED.md records for dfvfs/ext2.raw.
func TestCorpusDfvfsExt2(t *testing.T) {
	f := corpusImage(t, "dfvfs/ext2.raw")
	want := map[string]uint64{"a_directory": 12, "a_directory/a_file": 13, "passwords.txt": 14,
		"a_directory/another_file": 15, "a_link": 16, "lost+found": 11}
	if got := walkInodes(t, f); !mapsEqual(got, want) {
		t.Errorf("walk = %v, want %v", got, want)
	}
	if u := f.Usage(); u.Label != "ext2_test" {
		t.Errorf("label %q", u.Label)
	}
	pw, err := fs.ReadFile(f, "passwords.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(pw) != "place,user,password\nbank,joesmith,superrich\nalarm system,-,1234\ntreasure chest,-,1111\nuber secret laire,admin,admin\n" {
		t.Errorf("passwords.txt = %q", pw)
	}
	for name, sum := range map[string]string{
		"a_directory/a_file":       "4a49638d0e1055fd9e4c17fef7fdf4d6ccf892b6d9c2f64164203c4bfb0ec92d",
		"a_directory/another_file": "c7fbc0e821c0871805a99584c6a384533909f68a6bbe9a2a687d28d9f3b10c16",
		"passwords.txt":            "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252",
	} {
		if got := sha256Of(t, f, name); got != sum {
			t.Errorf("%s sha256 %s, want %s", name, got, sum)
		}
	}
	if b, _ := fs.ReadFile(f, "a_directory/a_file"); string(b) != "This is a text file.\n\nWe should be able to parse it.\n" {
		t.Errorf("a_file = %q", b)
	}
	st := lstat(t, f, "a_directory/another_file")
	if st.Mode != 0o100664 || st.Uid != 1000 || st.Gid != 1000 || st.Nlink != 1 || st.Size != 22 || !st.Btime.IsZero() {
		t.Errorf("another_file stat %+v", st)
	}
	if st.Atime.IsZero() || st.Ctime.IsZero() || st.Mtime.IsZero() {
		t.Errorf("another_file lacks a time: %+v", st)
	}
	// Its one data block is at volume offset 527360: check the mapping, not just the bytes.
	in, err := f.lookup("test", "a_directory/another_file", false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.dataOf(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.runs) != 1 || d.runs[0].physical*uint64(f.sb.blockSize) != 527360 || d.runs[0].length != 1 {
		t.Errorf("another_file runs %+v", d.runs)
	}
	// Positional reads as dfvfs checks them.
	fl, err := f.Open("a_directory/another_file")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	ra := fl.(fsys.File)
	for _, c := range []struct {
		off  int64
		n    int
		want string
	}{{10, 5, "other"}, {22 - 10, 5, "her f"}, {19, 2, "e."}} {
		buf := make([]byte, c.n)
		if _, err := ra.ReadAt(buf, c.off); err != nil || string(buf) != c.want {
			t.Errorf("ReadAt(%d) = %q, %v; want %q", c.off, buf, err, c.want)
		}
	}
	if n, err := ra.ReadAt(make([]byte, 4), 300); n != 0 || err != io.EOF {
		t.Errorf("read past EOF: %d, %v", n, err)
	}
	if _, err := ra.Seek(-1, io.SeekStart); err == nil {
		t.Error("negative seek accepted")
	}
	link := lstat(t, f, "a_link")
	if target, err := f.ReadLink("a_link"); err != nil || target != "a_directory/another_file" || link.Size != 24 || !f.isFastSymlink(in0(t, f, "a_link")) {
		t.Errorf("a_link -> %q, %v (size %d)", target, err, link.Size)
	}
	if fi, err := f.Stat("a_link"); err != nil || fsys.StatOf(fi).Ino != 15 {
		t.Errorf("a_link does not resolve to another_file: %v", err)
	}
	names, err := f.ListXattr("a_directory/a_file")
	if err != nil || !slices.Equal(names, []string{"security.selinux", "user.myxattr"}) {
		t.Errorf("a_file xattrs %q, %v", names, err)
	}
	if v, err := f.GetXattr("a_directory/a_file", "user.myxattr"); err != nil || string(v) != "My extended attribute" {
		t.Errorf("user.myxattr = %q, %v", v, err)
	}
	// Every inode time is 2021-07-22 14:07:31 or :32 UTC.
	err = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st := lstat(t, f, p)
		for _, tm := range []time.Time{st.Atime, st.Mtime, st.Ctime} {
			if s := tm.Unix(); s != 1626962851 && s != 1626962852 {
				t.Errorf("%s time %v", p, tm)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func in0(t *testing.T, f *FS, name string) *inode {
	t.Helper()
	in, err := f.lookup("test", name, false)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

const jungleSHA = "a6f532cdd131642560ef7c299c7f75f8206f03cdace072358c9dd65bc8a9b652"

// The facts EXPECTED.md records for the go-ext4 images.
func TestCorpusGoExt4(t *testing.T) {
	h32 := map[string]uint64{"lost+found": 11, "thejungle.txt": 12, "directory1": 13, "directory1/fortune2": 14,
		"directory1/fortune1": 15, "directory1/subdirectory1": 16, "directory1/subdirectory1/fortune3": 17,
		"directory1/subdirectory1/fortune4": 18, "directory1/subdirectory2": 19, "directory1/fortune5": 20,
		"directory1/fortune6": 21, "directory1/subdirectory2/fortune7": 22, "directory1/subdirectory2/fortune8": 23,
		"directory2": 24, "directory2/fortune9": 25, "directory2/fortune10": 26}
	h64 := map[string]uint64{"lost+found": 11, "directory1": 12, "directory2": 13, "directory1/subdirectory1": 14,
		"directory1/subdirectory2": 15, "thejungle.txt": 16, "directory1/fortune1": 17, "directory1/fortune2": 18,
		"directory1/fortune5": 19, "directory1/fortune6": 20, "directory1/subdirectory1/fortune3": 21,
		"directory1/subdirectory1/fortune4": 22, "directory1/subdirectory2/fortune7": 23,
		"directory1/subdirectory2/fortune8": 24, "directory2/fortune10": 25, "directory2/fortune9": 26}
	tiny := map[string]uint64{"lost+found": 11, "thejungle.txt": 12}
	for _, c := range []struct {
		img   string
		walk  map[string]uint64
		uuid  string
		is64  bool
		label string
	}{
		{"hierarchy_32.ext4", h32, "9905d1c3-345a-4deb-82b2-4992f3f546cc", false, "tinyimage"},
		{"hierarchy_64.ext4", h64, "dac7fa47-1933-43ec-8b14-a91c716cb6c7", true, ""},
		{"tiny.ext4", tiny, "9905d1c3-345a-4deb-82b2-4992f3f546cc", false, "tinyimage"},
	} {
		t.Run(c.img, func(t *testing.T) {
			f := corpusImage(t, "go-ext4/"+c.img)
			if got := walkInodes(t, f); !mapsEqual(got, c.walk) {
				t.Errorf("walk = %v, want %v", got, c.walk)
			}
			u := f.Usage()
			if u.UUID != c.uuid || f.sb.has(incompat64bit) != c.is64 || (c.label != "" && u.Label != c.label) {
				t.Errorf("usage %+v, 64bit %v", u, f.sb.has(incompat64bit))
			}
			if st := lstat(t, f, "thejungle.txt"); st.Size != 849597 {
				t.Errorf("thejungle.txt size %d", st.Size)
			}
			if got := sha256Of(t, f, "thejungle.txt"); got != jungleSHA {
				t.Errorf("thejungle.txt sha256 %s", got)
			}
		})
	}
	f := corpusImage(t, "go-ext4/tiny.ext4")
	if f.sb.inodesCount != 128 || f.sb.blocksCount != 1024 || f.sb.blockSize != 1024 || f.sb.mkfsTime != 1536385726 {
		t.Errorf("tiny superblock %+v", f.sb)
	}
	if ct := lstat(t, f, ".").Ctime; !ct.Equal(time.Date(2018, 9, 8, 6, 8, 45, 0, time.UTC)) {
		t.Errorf("root ctime %v", ct)
	}
	// thejungle.txt read through the inode (by number) and compared with the corpus copy.
	want, err := os.ReadFile(filepath.Join(filepath.Dir(testfix.RepoRoot(t)), "shared", "acceptance", "corpus", "go-ext4", "thejungle.txt"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.inode(12)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.dataOf(in)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, in.st.Size)
	if _, err := d.ReadAt(got, 0); err != nil || string(got) != string(want) {
		t.Errorf("inode 12 differs from thejungle.txt (%v)", err)
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
