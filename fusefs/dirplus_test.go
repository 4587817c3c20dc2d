package fusefs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// lstatCountingTree counts the path resolutions (Lstat) asked of a streaming tree: the FUSE layer
// makes one per LOOKUP the kernel sends.
type lstatCountingTree struct {
	fsys.FS
	lstats atomic.Int64
}

func (t *lstatCountingTree) Lstat(name string) (os.FileInfo, error) {
	t.lstats.Add(1)
	return t.FS.Lstat(name)
}

func (t *lstatCountingTree) GetXattrInode(ino uint64, name, attr string) ([]byte, error) {
	return t.FS.(fsys.InodeXattrGetter).GetXattrInode(ino, name, attr)
}

func (t *lstatCountingTree) OpenDirStream(name string) (fsys.DirStream, error) {
	return t.FS.(fsys.DirStreamer).OpenDirStream(name)
}

// A listing that stats its entries as it goes (ls -l; Go's File.Readdir lstats each name) of a
// 3,000-entry streamed directory gets its entries' attributes in the listing once the kernel starts
// looking entries up, instead of one LOOKUP per entry past the first plusEntries; the attributes equal
// the kernel's loop mount. A listing of names alone (ls -f) makes no LOOKUP at all.
func TestStatListingOfStreamedDirectory(t *testing.T) {
	needMounts(t)
	needTools(t, "mke2fs")
	dir := t.TempDir()
	// Two directories: the kernel keeps a listing in its cache, so each is listed once.
	for _, d := range []string{"names", "stats"} {
		if err := os.MkdirAll(filepath.Join(dir, "src", d), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 3000 {
			p := filepath.Join(dir, "src", d, fmt.Sprintf("entry-%05d-%x", i, i*7919))
			if err := os.WriteFile(p, make([]byte, i%300), 0o644); err != nil {
				t.Fatal(err)
			}
			if i%500 == 7 {
				if err := unix.Setxattr(p, "user.tag", []byte(fmt.Sprint("tag ", i)), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	img := filepath.Join(dir, "ext4.img")
	run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-N", "7000", "-d", filepath.Join(dir, "src"), img, "64M")
	k := filepath.Join(dir, "k")
	os.Mkdir(k, 0o755)
	run(t, "mount", "-o", "loop,ro,noatime", img, k)
	defer exec.Command("umount", k).Run()

	tr := imageTree(t, img)
	if _, ok := tr.(fsys.DirStreamer); !ok {
		t.Fatal("the ext4 tree does not stream: the test would not cover streamed listings")
	}
	tree := &lstatCountingTree{FS: tr}
	mnt := mountTree(t, filepath.Join(dir, "mnt"), tree)

	want := map[string]os.FileInfo{}
	kf, err := os.Open(filepath.Join(k, "stats"))
	if err != nil {
		t.Fatal(err)
	}
	kfis, err := kf.Readdir(-1)
	kf.Close()
	if err != nil || len(kfis) != 3000 {
		t.Fatalf("the kernel lists %d entries, %v", len(kfis), err)
	}
	for _, fi := range kfis {
		want[fi.Name()] = fi
	}

	for _, d := range []string{"names", "stats"} {
		if _, err := os.Stat(filepath.Join(mnt, d)); err != nil {
			t.Fatal(err)
		}
	}
	before := tree.lstats.Load()
	if n := len(names(t, filepath.Join(mnt, "names"))); n != 3000 {
		t.Fatalf("the mount lists %d names", n)
	}
	if n := tree.lstats.Load() - before; n != 0 {
		t.Errorf("listing names alone made %d lookups", n)
	}

	before = tree.lstats.Load()
	f, err := os.Open(filepath.Join(mnt, "stats"))
	if err != nil {
		t.Fatal(err)
	}
	fis, err := f.Readdir(-1)
	f.Close()
	if err != nil || len(fis) != 3000 {
		t.Fatalf("the mount lists %d entries with their attributes, %v", len(fis), err)
	}
	for _, fi := range fis {
		w := want[fi.Name()]
		if w == nil || w.Size() != fi.Size() || w.Mode() != fi.Mode() || !w.ModTime().Equal(fi.ModTime()) {
			t.Fatalf("%s: %v; the kernel: %v", fi.Name(), fi, w)
		}
	}
	// Extended attributes, read by the entry's inode (fsys.InodeXattrGetter), equal the kernel's.
	xattrs := 0
	for _, fi := range fis {
		kv, kerr := xattr(filepath.Join(k, "stats", fi.Name()), "user.tag")
		v, err := xattr(filepath.Join(mnt, "stats", fi.Name()), "user.tag")
		if string(v) != string(kv) || (err == nil) != (kerr == nil) {
			t.Fatalf("%s: user.tag %q, %v; the kernel: %q, %v", fi.Name(), v, err, kv, kerr)
		}
		if err == nil {
			xattrs++
		}
	}
	if xattrs != 6 {
		t.Errorf("%d files have user.tag, not 6", xattrs)
	}
	// Before, every entry past the first 1,024 of the listing was one LOOKUP (about 2,000 here); now
	// only those of the reply in which the listing turns back to attributes.
	if n := tree.lstats.Load() - before; n > 500 {
		t.Errorf("a listing that stats its entries made %d lookups of 3,000 entries", n)
	}
}

// imageTree opens the file tree of the first volume of a disk image, closed when the test ends.
func imageTree(t *testing.T, img string) fsys.FS {
	t.Helper()
	set, closer, err := volumes.OpenFiles([]string{img}, vddk.Options{}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	tr, err := set.Volumes()[0].OpenTree(volumes.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// mountTree mounts tree alone at mnt, unmounted when the test ends.
func mountTree(t *testing.T, mnt string, tree fsys.FS) string {
	t.Helper()
	os.Mkdir(mnt, 0o755)
	srv, err := fusefs.Mount(mnt, &fusefs.Layout{Trees: []fusefs.TreeSource{{Name: "v", Tree: tree}}, SingleTree: true}, fusefs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Unmount() })
	return mnt
}

func xattr(path, attr string) ([]byte, error) {
	b := make([]byte, 256)
	n, err := unix.Lgetxattr(path, attr, b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}
