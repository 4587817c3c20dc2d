package graft

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/ext4"
)

// ext4Tree makes an ext4 image of the files with mkfs.ext4 -d and opens it with our reader; the files
// also land in host/<at> so the test can build the composed tree the graft must show.
func ext4Tree(t *testing.T, dir, name string, files map[string]string) fsys.FS {
	t.Helper()
	src := filepath.Join(dir, name+".src")
	for p, c := range files {
		full := filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if strings.HasSuffix(p, "/") {
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, name+".img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	tr, err := ext4.Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// walk lists every path of a tree (lost+found left out) with the content of its files, and checks that
// inode numbers are unique.
func walk(t *testing.T, tr fsys.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	inos := map[uint64]string{}
	err := fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "lost+found" {
			return fs.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fsys.StatOf(fi)
		if prev, ok := inos[st.Ino]; ok {
			t.Errorf("%s and %s share inode %#x", prev, p, st.Ino)
		}
		inos[st.Ino] = p
		if lfi, err := tr.Lstat(p); err != nil || fsys.StatOf(lfi).Ino != st.Ino || lfi.Name() != fi.Name() {
			t.Errorf("%s: Lstat %v %v disagrees with its directory entry", p, lfi, err)
		}
		if d.IsDir() {
			out[p] = "/"
			return nil
		}
		f, err := tr.Open(p)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(f)
		f.Close()
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return strings.Join(k, " ")
}

func TestLinuxLikeGraft(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	dir := t.TempDir()
	root := ext4Tree(t, dir, "root", map[string]string{"etc/fstab": "x", "boot/hidden-by-mount": "no", "home/": "", "bin/sh": "elf"})
	boot := ext4Tree(t, dir, "boot", map[string]string{"vmlinuz": "kernel", "grub/grub.cfg": "menu"})
	home := ext4Tree(t, dir, "home", map[string]string{"alice/notes": "hello"})
	data := ext4Tree(t, dir, "data", map[string]string{"big": "data"})
	g, err := New(root, []Mount{{"boot", boot}, {"/home/", home}, {"srv/data", data}}, time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, g)
	want := map[string]string{".": "/", "etc": "/", "etc/fstab": "x", "bin": "/", "bin/sh": "elf",
		"boot": "/", "boot/vmlinuz": "kernel", "boot/grub": "/", "boot/grub/grub.cfg": "menu",
		"home": "/", "home/alice": "/", "home/alice/notes": "hello",
		"srv": "/", "srv/data": "/", "srv/data/big": "data"}
	if keys(got) != keys(want) {
		t.Fatalf("paths\n got %s\nwant %s", keys(got), keys(want))
	}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("%s: %q, want %q", p, got[p], c)
		}
	}
	// srv is made up (the base has none): a read-only directory.
	if fi, err := g.Stat("srv"); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o555 {
		t.Errorf("srv: %v %v", fi, err)
	}
	if _, err := g.Stat("boot/hidden-by-mount"); err == nil {
		t.Error("the base's boot/hidden-by-mount shows through the graft")
	}
	if _, err := g.Stat("nope"); !errorsIsNotExist(err) {
		t.Errorf("nope: %v", err)
	}
	if _, err := g.Stat("../x"); err == nil {
		t.Error("../x accepted")
	}
}

func errorsIsNotExist(err error) bool { return err != nil && os.IsNotExist(err) }

func TestDrivesGraft(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	dir := t.TempDir()
	c := ext4Tree(t, dir, "c", map[string]string{"Windows/win.ini": "[fonts]"})
	d := ext4Tree(t, dir, "d", map[string]string{"report.txt": "q3"})
	g, err := New(nil, []Mount{{"C", c}, {"D", d}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, g)
	if keys(got) != ". C C/Windows C/Windows/win.ini D D/report.txt" || got["D/report.txt"] != "q3" {
		t.Fatalf("drives: %s", keys(got))
	}
	f, err := g.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := f.(fs.ReadDirFile).ReadDir(-1)
	if err != nil || len(ents) != 2 {
		t.Fatalf("root listing %v %v", ents, err)
	}
	if _, err := New(nil, []Mount{{"C", c}, {"C/", d}}, time.Time{}); err == nil {
		t.Error("two grafts at C accepted")
	}
}

func TestFilesGraft(t *testing.T) {
	disk := bytes.Repeat([]byte("0123456789"), 100)
	files, err := NewFiles([]File{{"disk", bytes.NewReader(disk), int64(len(disk))}, {"p1", bytes.NewReader(disk[10:20]), 10}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewFiles([]File{{"a/b", bytes.NewReader(nil), 0}}, time.Time{}); err == nil {
		t.Error("a/b accepted")
	}
	g, err := New(nil, []Mount{{"raw", files}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := walk(t, g)
	if keys(got) != ". raw raw/disk raw/p1" || got["raw/disk"] != string(disk) || got["raw/p1"] != "0123456789" {
		t.Fatalf("raw files: %s %q", keys(got), got["raw/p1"])
	}
	f, _ := g.Open("raw/disk")
	b := make([]byte, 4)
	if n, err := f.(fsys.File).ReadAt(b, 995); n != 4 || string(b) != "5678" {
		t.Errorf("ReadAt: %d %v %q", n, err, b)
	}
}
