package makefs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
)

var long = flag.Bool("long", false, "also build from a 3 GiB sparse file")

func need(t testing.TB, tools ...string) {
	for _, x := range tools {
		if _, err := exec.LookPath(x); err != nil {
			t.Skipf("%s is not installed", x)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// base is an even second, so FAT's 2-second steps hold it exactly.
var base = time.Date(2021, 3, 4, 5, 6, 8, 0, time.Local)

// makeTree writes a source tree: folders deep and wide, Unicode names, empty files, a few MB of random
// bytes, modes and times that differ per entry, and (with links) a symlink.
func makeTree(t testing.TB, dir string, links bool) {
	rnd := rand.New(rand.NewSource(1))
	write := func(rel string, data []byte, mode fs.FileMode, i int) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		tm := base.Add(time.Duration(i) * 2 * time.Second)
		os.Chtimes(p, tm, tm)
	}
	big := make([]byte, 3<<20+123)
	rnd.Read(big)
	write("big.bin", big, 0o640, 1)
	write("empty", nil, 0o600, 2)
	write("docs/Ünïcødé ファイル.txt", []byte("unicode\n"), 0o644, 3)
	write("docs/a long name with spaces and more than thirteen characters.text", []byte("lfn"), 0o755, 4)
	deep := "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10"
	write(deep+"/leaf.txt", []byte("deep"), 0o444, 5)
	write(deep+"/empty.txt", nil, 0o644, 6)
	if links {
		os.Symlink("docs/Ünïcødé ファイル.txt", filepath.Join(dir, "link"))
		tm := base.Add(20 * time.Second)
		setTimes(filepath.Join(dir, "link"), tm)
	}
	// Folder times last: creating entries moves them.
	i := 30
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			tm := base.Add(time.Duration(i) * 2 * time.Second)
			i++
			os.Chtimes(p, tm, tm)
		}
		return nil
	})
}

// lstat and friends let one comparison read the host and our own reader.
type tree interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Open(name string) (fs.File, error)
	ReadLink(name string) (string, error)
}

type hostTree string

func (h hostTree) p(n string) string                       { return filepath.Join(string(h), filepath.FromSlash(n)) }
func (h hostTree) Lstat(n string) (fs.FileInfo, error)     { return os.Lstat(h.p(n)) }
func (h hostTree) ReadDir(n string) ([]fs.DirEntry, error) { return os.ReadDir(h.p(n)) }
func (h hostTree) Open(n string) (fs.File, error)          { return os.Open(h.p(n)) }
func (h hostTree) ReadLink(n string) (string, error)       { return os.Readlink(h.p(n)) }

type want struct {
	modes     bool          // permission bits kept
	res       time.Duration // mtime resolution
	links     bool
	dirTimes  bool
	linkTimes bool
}

// compare checks every entry of src against got: names, types, sizes, bytes, and modes and mtimes as
// far as w says the filesystem keeps them. skip names entries left out on purpose.
func compare(t *testing.T, judge string, src string, got tree, w want, skip map[string]bool) {
	t.Helper()
	n := 0
	var walk func(rel string)
	walk = func(rel string) {
		ents, err := os.ReadDir(filepath.Join(src, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		gotEnts, err := got.ReadDir(rel)
		if err != nil {
			t.Errorf("%s: readdir %s: %v", judge, rel, err)
			return
		}
		names := map[string]bool{}
		for _, e := range gotEnts {
			names[e.Name()] = true
		}
		for _, e := range ents {
			r := path.Join(rel, e.Name())
			if skip[r] {
				if names[e.Name()] {
					t.Errorf("%s: %s was to be left out", judge, r)
				}
				continue
			}
			if !names[e.Name()] {
				t.Errorf("%s: %s missing", judge, r)
				continue
			}
			delete(names, e.Name())
			n++
			si, _ := os.Lstat(filepath.Join(src, filepath.FromSlash(r)))
			gi, err := got.Lstat(r)
			if err != nil {
				t.Errorf("%s: %s: %v", judge, r, err)
				continue
			}
			if si.Mode().Type() != gi.Mode().Type() {
				t.Errorf("%s: %s type %v, want %v", judge, r, gi.Mode().Type(), si.Mode().Type())
				continue
			}
			if w.modes && si.Mode().Perm() != gi.Mode().Perm() {
				t.Errorf("%s: %s mode %v, want %v", judge, r, gi.Mode(), si.Mode())
			}
			if (!si.IsDir() || w.dirTimes) && (si.Mode()&fs.ModeSymlink == 0 || w.linkTimes) && w.res > 0 {
				if d := si.ModTime().Truncate(w.res).Sub(gi.ModTime()); d != 0 {
					t.Errorf("%s: %s mtime %v, want %v", judge, r, gi.ModTime(), si.ModTime())
				}
			}
			switch {
			case si.IsDir():
				walk(r)
			case si.Mode()&fs.ModeSymlink != 0:
				a, _ := os.Readlink(filepath.Join(src, filepath.FromSlash(r)))
				if b, err := got.ReadLink(r); err != nil || a != b {
					t.Errorf("%s: %s -> %q (%v), want %q", judge, r, b, err, a)
				}
			default:
				if si.Size() != gi.Size() {
					t.Errorf("%s: %s size %d, want %d", judge, r, gi.Size(), si.Size())
				}
				if a, b := hashFile(t, hostTree(src), r), hashFile(t, got, r); a != b {
					t.Errorf("%s: %s bytes differ", judge, r)
				}
			}
		}
		for extra := range names {
			t.Errorf("%s: %s/%s is not in the source", judge, rel, extra)
		}
	}
	walk(".")
	if n == 0 {
		t.Fatalf("%s: compared nothing", judge)
	}
}

func hashFile(t *testing.T, tr tree, name string) string {
	f, err := tr.Open(name)
	if err != nil {
		t.Errorf("open %s: %v", name, err)
		return "error"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Errorf("read %s: %v", name, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// ourTree opens the disk with our own reader (volumes.OpenFiles) and returns its one volume's tree.
func ourTree(t *testing.T, disk string) tree {
	set, closer, err := volumes.OpenFiles([]string{disk}, vddk.Options{}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	vs := set.Volumes()
	if len(vs) != 1 {
		t.Fatalf("%s: %d volumes", disk, len(vs))
	}
	tr, err := vs[0].OpenTree(volumes.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// partBytes copies the disk's filesystem out (from raw at offset) for judges that take a bare image.
func partBytes(t *testing.T, raw string, off int64) string {
	out := filepath.Join(t.TempDir(), "fs.img")
	run(t, "dd", "if="+raw, "of="+out, fmt.Sprintf("bs=%d", mib), fmt.Sprintf("skip=%d", off/mib), "conv=sparse", "status=none")
	return out
}

func checkTable(t *testing.T, raw, table string) int64 {
	switch table {
	case "gpt":
		need(t, "sgdisk")
		out := run(t, "sgdisk", "-v", raw)
		if !strings.Contains(out, "No problems found") {
			t.Fatalf("sgdisk -v: %s", out)
		}
		if p := run(t, "sgdisk", "-i", "1", raw); !strings.Contains(p, "First sector: 2048") {
			t.Fatalf("sgdisk -i 1: %s", p)
		}
		return mib
	case "mbr":
		need(t, "sfdisk")
		out := run(t, "sfdisk", "-d", raw)
		if !strings.Contains(out, "label: dos") || !strings.Contains(out, "start=        2048") {
			t.Fatalf("sfdisk -d: %s", out)
		}
		return mib
	}
	return 0
}

func TestSquashfsRoundTrip(t *testing.T) {
	need(t, "qemu-img", "mount", "unsquashfs")
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	for _, table := range []string{"none", "gpt"} {
		t.Run(table, func(t *testing.T) {
			dir := t.TempDir()
			raw := filepath.Join(dir, "d.raw")
			if _, err := Make(src, raw, Options{FS: "squashfs", Type: "raw", Partition: table}); err != nil {
				t.Fatal(err)
			}
			off := checkTable(t, raw, table)
			img := partBytes(t, raw, off)
			run(t, "unsquashfs", "-s", img)
			mnt := filepath.Join(dir, "mnt")
			os.Mkdir(mnt, 0o755)
			if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", img, mnt).CombinedOutput(); err != nil {
				t.Skipf("no loop mount here: %v %s", err, out)
			}
			defer exec.Command("umount", mnt).Run()
			w := want{modes: true, res: time.Second, links: true, dirTimes: true, linkTimes: true}
			compare(t, "kernel", src, hostTree(mnt), w, nil)
			vm := filepath.Join(dir, "d.vmdk")
			if _, err := Make(src, vm, Options{FS: "squashfs", Type: vddk.TypeStreamOptimized, Partition: table}); err != nil {
				t.Fatal(err)
			}
			run(t, "qemu-img", "check", vm)
			compare(t, "vmdkmount", src, ourTree(t, vm), w, nil)
		})
	}
}

func TestISORoundTrip(t *testing.T) {
	need(t, "xorriso", "isoinfo", "qemu-img")
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	if _, err := Make(src, raw, Options{FS: "iso9660", Type: "raw", Partition: "mbr", Label: "SEED"}); err != nil {
		t.Fatal(err)
	}
	img := partBytes(t, raw, checkTable(t, raw, "mbr"))
	if out := run(t, "isoinfo", "-d", "-i", img); !strings.Contains(out, "Volume id: SEED") ||
		!strings.Contains(out, "Rock Ridge signatures version 1 found") || !strings.Contains(out, "Joliet with UCS level 3 found") {
		t.Fatalf("isoinfo -d: %s", out)
	}
	joliet := run(t, "xorriso", "-rockridge", "off", "-joliet", "on", "-indev", img, "-find", "/")
	if !strings.Contains(joliet, "'/docs/Ünïcødé ファイル.txt'") || !strings.Contains(joliet, "'/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/leaf.txt'") {
		t.Errorf("Joliet names lack the Unicode one:\n%s", joliet)
	}
	out := filepath.Join(dir, "x")
	run(t, "xorriso", "-osirrox", "on", "-indev", img, "-extract", "/", out)
	w := want{modes: true, res: time.Second, links: true}
	compare(t, "xorriso", src, hostTree(out), w, nil) // xorriso sets no time on the symlinks it makes
	w.linkTimes, w.dirTimes = true, true
	vm := filepath.Join(dir, "d.vmdk")
	if _, err := Make(src, vm, Options{FS: "iso9660", Type: vddk.TypeMonolithicFlat}); err != nil {
		t.Fatal(err)
	}
	run(t, "qemu-img", "check", vm)
	compare(t, "vmdkmount", src, ourTree(t, vm), w, nil)
}

func TestFAT32RoundTrip(t *testing.T) {
	need(t, "mcopy", "fsck.vfat", "qemu-img")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	// Short names: kept as they are, lower case, a clash with a generated "~1" name, names that
	// differ only past 6 characters, and a name outside the Basic Multilingual Plane (surrogates).
	for i, n := range []string{"READ.ME", "readme.md", "LONGNA~1.TXT", "longname-one.txt", "longname-two.txt",
		"..dots. and spaces .x", "emoji 🙂.txt"} {
		p := filepath.Join(src, "names", n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		tm := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, tm, tm)
	}
	os.Chtimes(filepath.Join(src, "names"), base, base)
	dir := t.TempDir()
	if _, err := Make(src, filepath.Join(dir, "bad.raw"), Options{FS: "fat32", Type: "raw"}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "link") {
		t.Fatalf("a symlink on FAT32: %v, want an error naming it", err)
	}
	raw := filepath.Join(dir, "d.raw")
	res, err := Make(src, raw, Options{FS: "fat32", Type: "raw", Partition: "gpt", Label: "DATA", SkipUnsupported: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != "link" {
		t.Fatalf("skipped %v, want the symlink", res.Skipped)
	}
	img := partBytes(t, raw, checkTable(t, raw, "gpt"))
	run(t, "fsck.vfat", "-n", img)
	out := filepath.Join(dir, "x")
	run(t, "mcopy", "-s", "-m", "-i", img, "::/", out)
	skip := map[string]bool{"link": true}
	// mtools turns each UTF-16 unit of a surrogate pair into a "_" of its own: the two units are there;
	// our own reader below checks the name itself.
	if ls := run(t, "mdir", "-i", img, "::/names"); !strings.Contains(ls, "emoji __.txt") {
		t.Errorf("mdir ::/names:\n%s", ls)
	}
	mskip := map[string]bool{"link": true, "names/emoji 🙂.txt": true}
	if b, err := os.ReadFile(filepath.Join(out, "names", "emoji __.txt")); err != nil || string(b) != "emoji 🙂.txt" {
		t.Errorf("mcopy of the emoji name: %q %v", b, err)
	}
	os.Remove(filepath.Join(out, "names", "emoji __.txt"))
	// mcopy -m keeps file times; folders it makes get the time of the copy.
	compare(t, "mtools", src, hostTree(filepath.Join(out)), want{res: 2 * time.Second}, mskip)
	for _, typ := range []string{vddk.TypeMonolithicSparse, vddk.TypeTwoGbMaxExtentSparse} {
		vm := filepath.Join(dir, typ+".vmdk")
		if _, err := Make(src, vm, Options{FS: "fat32", Type: typ, Partition: "mbr", SkipUnsupported: true}); err != nil {
			t.Fatal(err)
		}
		run(t, "qemu-img", "check", vm)
		compare(t, "vmdkmount", src, ourTree(t, vm), want{res: 2 * time.Second, dirTimes: true}, skip)
	}
}

// TestManyFiles: 10,000 files in folders of 1,000, on every filesystem.
func TestManyFiles(t *testing.T) {
	need(t, "mcopy", "unsquashfs", "xorriso")
	src := filepath.Join(t.TempDir(), "src")
	for i := range 10000 {
		p := filepath.Join(src, fmt.Sprintf("dir%02d", i/1000), fmt.Sprintf("file-%05d.txt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", i%700)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, fsType := range Filesystems {
		t.Run(fsType, func(t *testing.T) {
			start := time.Now()
			out := filepath.Join(t.TempDir(), "d.vmdk")
			_, err := Make(src, out, Options{FS: fsType})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %v", fsType, time.Since(start))
			res := time.Second
			if fsType == "fat32" {
				res = 2 * time.Second
			}
			compare(t, "vmdkmount", src, ourTree(t, out), want{res: res}, nil)
			if fsType == "fat32" {
				raw := filepath.Join(t.TempDir(), "d.raw")
				if _, err := Make(src, raw, Options{FS: fsType, Type: "raw"}); err != nil {
					t.Fatal(err)
				}
				run(t, "fsck.vfat", "-n", raw)
				t.Setenv("MTOOLS_SKIP_CHECK", "1")
				x := filepath.Join(t.TempDir(), "x")
				run(t, "mcopy", "-s", "-m", "-i", raw, "::/", x)
				compare(t, "mtools", src, hostTree(x), want{res: res}, nil)
			}
			if fsType == "squashfs" { // a directory table of many metadata blocks
				raw := filepath.Join(t.TempDir(), "d.raw")
				if _, err := Make(src, raw, Options{FS: fsType, Type: "raw"}); err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(run(t, "unsquashfs", "-l", raw), "\n"); n != 1+10+10000 {
					t.Errorf("unsquashfs lists %d lines, want the root, 10 folders and 10,000 files", n)
				}
				mnt := t.TempDir()
				if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", raw, mnt).CombinedOutput(); err != nil {
					t.Skipf("no loop mount here: %v %s", err, out)
				}
				defer exec.Command("umount", mnt).Run()
				compare(t, "kernel", src, hostTree(mnt), want{modes: true, res: time.Second, dirTimes: true}, nil)
			}
		})
	}
}

func TestTarSources(t *testing.T) {
	need(t, "tar", "xz", "gzip")
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	dir := t.TempDir()
	plain := filepath.Join(dir, "t.tar")
	run(t, "tar", "-C", src, "-cf", plain, ".")
	run(t, "sh", "-c", "gzip -c "+plain+" > "+plain+".gz && xz -c "+plain+" > "+plain+".xz")
	// zstd through our own encoder: the zstd command may be absent.
	in, _ := os.ReadFile(plain)
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(in)
	zw.Close()
	os.WriteFile(plain+".zst", zb.Bytes(), 0o644)
	for _, tf := range []string{plain, plain + ".gz", plain + ".xz", plain + ".zst"} {
		out := filepath.Join(dir, filepath.Base(tf)+".vmdk")
		if _, err := Make(tf, out, Options{FS: "squashfs"}); err != nil {
			t.Fatalf("%s: %v", tf, err)
		}
		compare(t, "vmdkmount "+filepath.Base(tf), src, ourTree(t, out), want{modes: true, res: time.Second, links: true, dirTimes: true}, nil)
	}
	// A member that climbs out of the archive is refused.
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Close()
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, hb.Bytes(), 0o644)
	if _, err := Make(bad, filepath.Join(dir, "bad.vmdk"), Options{FS: "squashfs"}); err == nil || !strings.Contains(err.Error(), "leaves the archive") {
		t.Fatalf("../evil: %v", err)
	}
}

func TestSizes(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, false)
	dir := t.TempDir()
	r, err := Make(src, filepath.Join(dir, "a.raw"), Options{FS: "fat32", Type: "raw", Size: 100 * mib, Partition: "gpt"})
	if err != nil || r.DiskSize != 100*mib {
		t.Fatalf("--size 100M: %+v %v", r, err)
	}
	r2, err := Make(src, filepath.Join(dir, "b.raw"), Options{FS: "squashfs", Type: "raw", Size: 10 * mib, Grow: true})
	if err != nil || r2.DiskSize < r2.FSSize+10*mib {
		t.Fatalf("--size +10M: %+v %v", r2, err)
	}
	if _, err := Make(src, filepath.Join(dir, "c.raw"), Options{FS: "squashfs", Type: "raw", Size: 4096}); err == nil {
		t.Fatal("a disk too small for the content was made")
	}
	if _, err := Make(src, filepath.Join(dir, "a.raw"), Options{FS: "squashfs", Type: "raw"}); err == nil {
		t.Fatal("an existing output was overwritten")
	}
}

// TestSparseBig: a 3 GiB file that is almost all hole goes onto an ISO9660 and a squashfs without
// taking its size in memory or on disk.
func TestSparseBig(t *testing.T) {
	if !*long {
		t.Skip("-long builds from a 3 GiB sparse file")
	}
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	f, _ := os.Create(filepath.Join(src, "sparse.img"))
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 3<<30-4)
	f.Close()
	tm := base
	os.Chtimes(filepath.Join(src, "sparse.img"), tm, tm)
	dir := t.TempDir()
	for _, fsType := range []string{"iso9660", "squashfs"} {
		raw := filepath.Join(dir, fsType+".raw")
		if _, err := Make(src, raw, Options{FS: fsType, Type: "raw"}); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		syscall.Stat(raw, &st)
		if st.Blocks*512 > 64*mib {
			t.Errorf("%s: the raw image takes %d bytes on disk for a 3 GiB hole", fsType, st.Blocks*512)
		}
		out := filepath.Join(dir, fsType+".vmdk")
		if _, err := Make(src, out, Options{FS: fsType}); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(out)
		if fi.Size() > 64*mib {
			t.Errorf("%s: the disk takes %d bytes for a 3 GiB hole", fsType, fi.Size())
		}
		compare(t, "vmdkmount", src, ourTree(t, out), want{modes: true, res: time.Second}, nil)
		if fsType == "squashfs" {
			compare(t, "kernel", src, hostTree(mountSquashfs(t, raw)), want{modes: true, res: time.Second}, nil)
		}
	}
}

// mountSquashfs loop-mounts a squashfs image read-only until the test ends.
func mountSquashfs(t *testing.T, img string) string {
	t.Helper()
	need(t, "mount")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("no loop mount here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// TestBigFolderSquashfs: a folder whose listing takes many metadata blocks (an extended folder inode
// with a lookup index; go-diskfs refused past ~60 KB) is listed and looked up by every reader.
func TestBigFolderSquashfs(t *testing.T) {
	need(t, "unsquashfs")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "big"), 0o755)
	for i := range 5000 {
		os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("a-rather-long-file-name-%05d.txt", i)), []byte(fmt.Sprint(i)), 0o644)
	}
	os.WriteFile(filepath.Join(src, "after"), []byte("x"), 0o644)
	raw := filepath.Join(t.TempDir(), "d.raw")
	if _, err := Make(src, raw, Options{FS: "squashfs", Type: "raw"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(run(t, "unsquashfs", "-l", raw), "\n"); n != 1+1+5000+1 {
		t.Errorf("unsquashfs lists %d lines, want the root, big, 5,000 files and after", n)
	}
	indexed := 0
	readSquashfs(t, raw).each(t, func(typ uint16, in []byte) {
		if typ == sqLDir {
			indexed += int(binary.LittleEndian.Uint16(in[32:]))
		}
	})
	if indexed < 5000*40/sqMeta {
		t.Errorf("the big folder's inode has %d lookup index entries", indexed)
	}
	w := want{modes: true, res: time.Second, dirTimes: true}
	compare(t, "vmdkmount", src, ourTree(t, raw), w, nil)
	compare(t, "kernel", src, hostTree(mountSquashfs(t, raw)), w, nil)
}

// TestDanglingSymlink: squashfs stores a symlink whatever its target, as mksquashfs does.
func TestDanglingSymlink(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	os.Symlink("nowhere", filepath.Join(src, "dangling"))
	os.WriteFile(filepath.Join(src, "f"), []byte("f"), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(src), "outside"), []byte("o"), 0o644)
	os.Symlink("../outside", filepath.Join(src, "climbs"))
	out := filepath.Join(t.TempDir(), "d.raw")
	res, err := Make(src, out, Options{FS: "squashfs", Type: "raw"})
	if err != nil || len(res.Skipped) != 0 {
		t.Fatalf("dangling symlinks on squashfs: %+v %v", res, err)
	}
	w := want{modes: true, res: time.Second, links: true, linkTimes: true}
	compare(t, "vmdkmount", src, ourTree(t, out), w, nil)
	compare(t, "kernel", src, hostTree(mountSquashfs(t, out)), w, nil)
}

// TestNoTemporaryLeftovers: building leaves nothing in the temporary folder (the ISO9660 writer
// stages a copy of the tree there).
func TestNoTemporaryLeftovers(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	out := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, fsName := range []string{"squashfs", "iso9660"} {
		if _, err := Make(src, filepath.Join(out, fsName+".raw"), Options{FS: fsName, Type: "raw"}); err != nil {
			t.Fatalf("%s: %v", fsName, err)
		}
		left, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range left {
			t.Errorf("%s left %s in the temporary folder", fsName, e.Name())
		}
	}
}

// TestSourceUntouched: building from a folder leaves its files as they were: no hard link into a
// staging folder (which raised the link count and moved the ctime), no write.
func TestSourceUntouched(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	type meta struct {
		ctime syscall.Timespec
		nlink uint64
		size  int64
	}
	stats := func() map[string]meta {
		m := map[string]meta{}
		filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			m[p] = meta{st.Ctim, uint64(st.Nlink), st.Size}
			return nil
		})
		return m
	}
	before := stats()
	for _, fsType := range Filesystems {
		out := filepath.Join(t.TempDir(), fsType+".raw")
		if _, err := Make(src, out, Options{FS: fsType, Type: "raw", SkipUnsupported: true}); err != nil {
			t.Fatalf("%s: %v", fsType, err)
		}
		after := stats()
		for p, b := range before {
			if a := after[p]; a != b {
				t.Errorf("%s: %s changed: ctime %v nlink %d size %d, was ctime %v nlink %d size %d", fsType, p, a.ctime, a.nlink, a.size, b.ctime, b.nlink, b.size)
			}
		}
	}
}
