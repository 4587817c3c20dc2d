package btrfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

func need(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop mounts need root")
	}
	for _, name := range tools {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not installed", name)
		}
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// text is compressible data that differs from line to line.
func text(seed, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of file %d: the quick brown fox jumps over the lazy dog\n", i, seed)
	}
	return b.Bytes()[:n]
}

// populate fills a mounted Btrfs with what the reader must show: files written under zstd, LZO and
// zlib compression, inline and sparse files, reflinks, hard links, symlinks, xattrs, a device node, a
// 5000-entry directory, a subvolume with a nested one and a read-only snapshot.
func populate(t *testing.T, img, mnt string) {
	for _, c := range []string{"zstd", "lzo", "zlib"} {
		run(t, "mount", "-o", "remount,compress-force="+c, mnt)
		for i := 0; i < 3; i++ {
			write(t, filepath.Join(mnt, c, fmt.Sprintf("f%d.txt", i)), text(i, 50000+i*70000))
		}
		write(t, filepath.Join(mnt, c, "small.txt"), text(9, 1500)) // inline, compressed
	}
	run(t, "mount", "-o", "remount,compress=no", mnt)
	write(t, filepath.Join(mnt, "plain", "inline.txt"), []byte("tiny inline file\n"))
	write(t, filepath.Join(mnt, "plain", "big.bin"), text(42, 3<<20))
	sparse := filepath.Join(mnt, "plain", "sparse.bin")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("start"), 0)
	f.WriteAt([]byte("middle"), 5<<20)
	f.Truncate(12 << 20)
	f.Close()
	run(t, "fallocate", "-l", "1M", filepath.Join(mnt, "plain", "prealloc.bin"))
	run(t, "cp", "--reflink=always", filepath.Join(mnt, "plain", "big.bin"), filepath.Join(mnt, "plain", "reflink.bin"))
	if err := os.Link(filepath.Join(mnt, "plain", "inline.txt"), filepath.Join(mnt, "plain", "hardlink.txt")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("inline.txt", filepath.Join(mnt, "plain", "rel-link"))
	os.Symlink("/plain/big.bin", filepath.Join(mnt, "plain", "abs-link"))
	os.Symlink(strings.Repeat("long/", 150)+"target", filepath.Join(mnt, "plain", "long-link"))
	unix.Setxattr(filepath.Join(mnt, "plain", "inline.txt"), "user.comment", []byte("hello xattr"), 0)
	unix.Setxattr(filepath.Join(mnt, "plain"), "user.dir", []byte("on a directory"), 0)
	unix.Mknod(filepath.Join(mnt, "plain", "null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3)))
	unix.Mkfifo(filepath.Join(mnt, "plain", "fifo"), 0o600)
	os.Chown(filepath.Join(mnt, "plain", "big.bin"), 1234, 5678)
	big := filepath.Join(mnt, "bigdir")
	os.Mkdir(big, 0o755)
	for i := 0; i < 5000; i++ {
		write(t, filepath.Join(big, fmt.Sprintf("entry-%05d", i)), []byte(fmt.Sprint(i)))
	}
	run(t, "btrfs", "subvolume", "create", filepath.Join(mnt, "sub1"))
	write(t, filepath.Join(mnt, "sub1", "in-sub.txt"), text(7, 20000))
	os.Mkdir(filepath.Join(mnt, "sub1", "dir"), 0o700)
	run(t, "btrfs", "subvolume", "create", filepath.Join(mnt, "sub1", "nested"))
	write(t, filepath.Join(mnt, "sub1", "nested", "deep.txt"), []byte("nested subvolume\n"))
	// Two nested subvolumes: the snapshot shows two stand-ins, which share one inode number.
	run(t, "btrfs", "subvolume", "create", filepath.Join(mnt, "sub1", "nested2"))
	run(t, "btrfs", "subvolume", "snapshot", "-r", filepath.Join(mnt, "sub1"), filepath.Join(mnt, "snap1"))
	write(t, filepath.Join(mnt, "sub1", "after-snapshot.txt"), []byte("not in the snapshot\n"))
}

// TestMatchesKernel builds a Btrfs with mkfs.btrfs and the kernel, then compares our tree with the
// kernel's ro,subvolid=5 mount entry by entry: zero differences.
func TestMatchesKernel(t *testing.T) {
	need(t, "mkfs.btrfs", "btrfs", "mount", "fallocate")
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 256<<20)
	run(t, "mkfs.btrfs", "-q", "-L", "ours", img)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	run(t, "mount", "-o", "loop", img, mnt)
	populate(t, img, mnt)
	testfix.Unmount(t, mnt)
	run(t, "mount", "-o", "loop,ro,noatime,subvolid=5", img, mnt)
	t.Cleanup(func() { testfix.Unmount(t, mnt) })

	fi, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fi.Close()
	st, _ := fi.Stat()
	ours, err := Open(fi, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	// snap1/nested stands in for a subvolume the snapshot did not take: the kernel makes up its
	// times when it is looked up, so it is checked on its own.
	standIn := func(p string) bool { return p == "snap1/nested" || p == "snap1/nested2" }
	for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{MaxDiffs: 50, IgnorePath: standIn}) {
		t.Error(d)
	}
	for _, p := range []string{"snap1/nested", "snap1/nested2"} {
		if ents, err := ours.ReadDir(p); err != nil || len(ents) != 0 {
			t.Errorf("%s: %d entries, %v; want an empty stand-in", p, len(ents), err)
		}
	}
	if hostEnts, _ := os.ReadDir(filepath.Join(mnt, "snap1/nested")); len(hostEnts) != 0 {
		t.Errorf("the kernel lists %d entries in snap1/nested", len(hostEnts))
	}
	// The comparison saw what was made.
	n := 0
	fs.WalkDir(ours, ".", func(string, fs.DirEntry, error) error { n++; return nil })
	if n < 5030 {
		t.Errorf("walk saw %d entries", n)
	}
	if u := ours.Usage(); u.Label != "ours" {
		t.Errorf("label %q", u.Label)
	}
	checkKinds(t, ours.(*FS))
	checkOpenInode(t, ours.(*FS), mnt)
	checkXattrInode(t, ours.(*FS))
}

// checkKinds makes sure the fixture holds every kind of extent the comparison is meant to cover:
// inline, preallocated, zlib, LZO and zstd compressed, and one extent shared by two files.
func checkKinds(t *testing.T, f *FS) {
	seen := map[string]int{}
	owners := map[uint64]int{}
	eachExtent(t, f, func(e extent) {
		seen[[]string{"inline", "regular", "prealloc"}[e.kind]]++
		seen[[]string{"plain", "zlib", "lzo", "zstd"}[e.compression]]++
		if e.disk != 0 {
			owners[e.disk]++
		}
	})
	for _, o := range owners {
		if o > 1 {
			seen["shared"]++
		}
	}
	for _, k := range []string{"inline", "prealloc", "zlib", "lzo", "zstd", "shared"} {
		if seen[k] == 0 {
			t.Errorf("the fixture has no %s extent (%v)", k, seen)
		}
	}
}
