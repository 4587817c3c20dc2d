package fusefs_test

import (
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
	"golang.org/x/sys/unix"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// needMounts skips unless FUSE and loop mounts can be made (CI runs as root with fuse3 installed).
func needMounts(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if os.Geteuid() != 0 {
		t.Skip("loop mounts need root")
	}
	needTools(t, "fusermount3", "qemu-img")
}

// needTools skips unless every tool is installed; in CI a missing tool is a failure.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// mountVolume opens disk and mounts the file tree of its volume id (the first volume for "") alone at a
// new folder; the mount, the tree and the disk are closed when the test ends.
func mountVolume(t *testing.T, disk, id string, tune ...func(*fusefs.Layout)) (string, *volumes.Volume) {
	t.Helper()
	d, err := vddk.Open(disk, vddk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	set, err := volumes.Open([]volumes.Disk{d}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var v *volumes.Volume
	if id == "" && len(set.Volumes()) > 0 {
		v = set.Volumes()[0]
	} else if found, ok := set.Volume(id); ok {
		v = found
	} else {
		t.Fatalf("%s has no volume %q", disk, id)
	}
	tr, err := v.OpenTree(volumes.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	mnt := t.TempDir()
	l := &fusefs.Layout{Trees: []fusefs.TreeSource{{Name: v.ID, Tree: tr}}, SingleTree: true}
	for _, f := range tune {
		f(l)
	}
	srv, err := fusefs.Mount(mnt, l, fusefs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Unmount() })
	return mnt, v
}

func corpus(t *testing.T) string {
	c := filepath.Join(testfix.RepoRoot(t), "..", "shared", "acceptance", "corpus")
	if _, err := os.Stat(c); err != nil {
		t.Skip("acceptance corpus not present")
	}
	return c
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// entry is what the comparison looks at for one path.
type entry struct {
	mode, uid, gid, nlink uint32
	size                  int64
	rdev                  uint64
	mtime, ctime          int64 // nanoseconds
	target, sum           string
	xattrs                string
	ino                   uint64
}

func scan(t *testing.T, dir string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{mode: st.Mode, uid: st.Uid, gid: st.Gid, nlink: uint32(st.Nlink), size: st.Size, rdev: st.Rdev,
			mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino}
		if rel == "." {
			e.nlink, e.ctime = 0, 0 // the mount point itself: compared through its contents
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFLNK:
			e.target, _ = os.Readlink(p)
		case syscall.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			e.sum = fmt.Sprintf("%x", h.Sum(nil))
		}
		buf := make([]byte, 65536)
		if n, err := unix.Llistxattr(p, buf); err == nil && n > 0 {
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			sort.Strings(names)
			for _, name := range names {
				v := make([]byte, 65536)
				m, _ := unix.Lgetxattr(p, name, v)
				e.xattrs += fmt.Sprintf("%s=%x;", name, v[:max(m, 0)])
			}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTrees compares our mount with the kernel's, field by field, and the hard-link grouping.
func sameTrees(t *testing.T, ours, kernel string) {
	t.Helper()
	a, b := scan(t, ours), scan(t, kernel)
	if len(a) < 3 {
		t.Fatalf("our mount shows only %d entries", len(a))
	}
	group := func(m map[string]entry) map[string]string {
		first := map[uint64]string{}
		g := map[string]string{}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := first[m[k].ino]; !ok {
				first[m[k].ino] = k
			}
			g[k] = first[m[k].ino]
		}
		return g
	}
	ga, gb := group(a), group(b)
	for p, eb := range b {
		ea, ok := a[p]
		if !ok {
			t.Errorf("%s: missing from our mount", p)
			continue
		}
		ea.ino, eb.ino = 0, 0
		if ea != eb {
			t.Errorf("%s differs:\n ours   %+v\n kernel %+v", p, ea, eb)
		}
		if ga[p] != gb[p] {
			t.Errorf("%s: hard-link group %s, kernel %s", p, ga[p], gb[p])
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			t.Errorf("%s: only in our mount", p)
		}
	}
}

// The dfvfs MBR image with two ext partitions, inside a stream-optimized VMDK: raw/disk equals qemu's
// reading, each raw volume equals its slice, and each tree equals the kernel's loop mount.
func TestMountMatchesKernel(t *testing.T) {
	needMounts(t)
	c := corpus(t)
	dir := t.TempDir()
	raw := filepath.Join(c, "dfvfs", "mbr.raw")
	vmdk := filepath.Join(dir, "mbr.vmdk")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	d, err := vddk.Open(vmdk, vddk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	set, err := volumes.Open([]volumes.Disk{d}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &fusefs.Layout{Raw: []fusefs.RawSource{{Name: "disk", R: d, Size: d.Size()}}}
	for _, v := range set.Volumes() {
		l.Raw = append(l.Raw, fusefs.RawSource{Name: v.ID, R: v, Size: v.Size()})
		tr, err := v.OpenTree(volumes.TreeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		l.Trees = append(l.Trees, fusefs.TreeSource{Name: v.ID, Tree: tr})
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	srv, err := fusefs.Mount(mnt, l, fusefs.MountOptions{FsName: vmdk})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()
	want, _ := os.ReadFile(raw)
	got, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("raw/disk differs from the image (%v)", err)
	}
	for _, v := range set.Volumes() {
		got, err := os.ReadFile(filepath.Join(mnt, "raw", v.ID))
		if err != nil || string(got) != string(want[v.Offset:v.Offset+v.Size()]) {
			t.Errorf("raw/%s differs from its slice (%v)", v.ID, err)
		}
		k := filepath.Join(dir, "k-"+v.ID)
		os.Mkdir(k, 0o755)
		run(t, "mount", "-o", fmt.Sprintf("loop,ro,noatime,offset=%d,sizelimit=%d", v.Offset, v.Size()), raw, k)
		sameTrees(t, filepath.Join(mnt, v.ID), k)
		run(t, "umount", k)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(mnt, "p1"), &sfs); err != nil || sfs.Blocks == 0 {
		t.Errorf("statfs: %v %+v", err, sfs)
	}
	if err := os.WriteFile(filepath.Join(mnt, "p1", "new"), []byte("x"), 0o644); err == nil {
		t.Error("created a file on a read-only mount")
	}
	if f, err := os.OpenFile(filepath.Join(mnt, "raw", "disk"), os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Error("opened raw/disk for writing on a read-only mount")
	}
}

// Real clients walk the mount: find lists what the kernel's mount lists, tar and rsync -a copy trees
// equal to the kernel's, and clamscan -r finds the one file a test signature matches, and nothing else.
func TestRealClients(t *testing.T) {
	needMounts(t)
	c := corpus(t)
	needTools(t, "tar", "rsync", "clamscan", "find")
	dir := t.TempDir()
	raw := filepath.Join(c, "dfvfs", "ext2.raw")
	mnt, _ := mountVolume(t, filepath.Join(c, "dfvfs", "ext2.vmdk"), "")
	kern := filepath.Join(dir, "kernel")
	os.Mkdir(kern, 0o755)
	run(t, "mount", "-o", "loop,ro,noatime", raw, kern)
	defer exec.Command("umount", kern).Run()

	find := func(root string) string {
		cmd := exec.Command("find", ".", "-printf", "%p %y %m %U %G %s %T@ %l\n")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	if a, b := find(mnt), find(kern); a != b {
		t.Errorf("find differs:\nours:\n%s\nkernel:\n%s", a, b)
	}
	for _, tool := range []string{"tar", "rsync"} {
		out := filepath.Join(dir, tool)
		os.Mkdir(out, 0o755)
		if tool == "tar" {
			tarball := filepath.Join(dir, "t.tar")
			run(t, "tar", "--xattrs", "-cf", tarball, "-C", mnt, ".")
			run(t, "tar", "--xattrs", "--xattrs-include=*", "-xpf", tarball, "-C", out)
		} else {
			run(t, "rsync", "-aHX", mnt+"/", out+"/")
		}
		a, b := scan(t, out), scan(t, kern)
		for p, eb := range b {
			ea := a[p]
			if ea.sum != eb.sum || ea.mode != eb.mode || ea.uid != eb.uid || ea.target != eb.target || (ea.mode&syscall.S_IFMT != syscall.S_IFDIR && ea.mtime != eb.mtime) {
				t.Errorf("%s copy of %s differs from the kernel's: %+v vs %+v", tool, p, ea, eb)
			}
		}
	}
	// A signature for passwords.txt only (MD5 hash database): clamscan must report exactly that file.
	pw, _ := os.ReadFile(filepath.Join(kern, "passwords.txt"))
	db := filepath.Join(dir, "test.hdb")
	os.WriteFile(db, fmt.Appendf(nil, "%x:%d:Vmdkmount.Test.Passwords\n", md5sum(pw), len(pw)), 0o644)
	cmd := exec.Command("clamscan", "--no-summary", "-d", db, "-r", "-i", mnt)
	out, _ := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "passwords.txt: Vmdkmount.Test.Passwords.UNOFFICIAL FOUND") {
		t.Errorf("clamscan found:\n%s", out)
	}
}

func md5sum(b []byte) [16]byte { return md5.Sum(b) }

// Birth times reach statx: the sample disk's ext4 volume shows the kernel's crtime for every entry.
func TestBirthTimes(t *testing.T) {
	needMounts(t)
	dir := t.TempDir()
	sample := filepath.Join(testfix.RepoRoot(t), "testdata", "sample", "sample-gpt.vmdk")
	raw := filepath.Join(dir, "sample.raw")
	run(t, "qemu-img", "convert", "-O", "raw", sample, raw)
	mnt, v := mountVolume(t, sample, "p2")
	kern := filepath.Join(dir, "kernel")
	os.Mkdir(kern, 0o755)
	run(t, "mount", "-o", fmt.Sprintf("loop,ro,noatime,offset=%d,sizelimit=%d", v.Offset, v.Size()), raw, kern)
	defer exec.Command("umount", kern).Run()
	checked := 0
	filepath.WalkDir(kern, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(kern, p)
		var a, b unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &b); err != nil || b.Mask&unix.STATX_BTIME == 0 {
			return nil
		}
		if err := unix.Statx(unix.AT_FDCWD, filepath.Join(mnt, rel), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &a); err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if a.Mask&unix.STATX_BTIME == 0 || a.Btime != b.Btime {
			t.Errorf("%s: birth %+v (mask %#x), kernel %+v", rel, a.Btime, a.Mask, b.Btime)
		}
		checked++
		return nil
	})
	if checked < 5 {
		t.Errorf("only %d entries had a birth time to compare", checked)
	}
}

// The sample disk's NTFS volume through our mount equals ntfs-3g's mount of the same partition
// (streams as user.* xattrs on both sides).
func TestNTFSMountMatchesNTFS3G(t *testing.T) {
	needMounts(t)
	needTools(t, "ntfs-3g")
	dir := t.TempDir()
	sample := filepath.Join(testfix.RepoRoot(t), "testdata", "sample", "sample-gpt.vmdk")
	raw := filepath.Join(dir, "sample.raw")
	run(t, "qemu-img", "convert", "-O", "raw", sample, raw)
	mnt, v := mountVolume(t, sample, "p1")
	if v.Filesystem.Type != "ntfs" {
		t.Fatalf("p1: %+v", v)
	}
	ref := filepath.Join(dir, "ntfs3g")
	os.Mkdir(ref, 0o755)
	out, err := exec.Command("losetup", "-f", "--show", "-r", "-o", fmt.Sprint(v.Offset), "--sizelimit", fmt.Sprint(v.Size()), raw).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	run(t, "ntfs-3g", "-o", "ro,streams_interface=xattr", loop, ref)
	defer exec.Command("umount", ref).Run()
	sameTrees(t, mnt, ref)
}

// raw/disk served through file spans (splice) of a three-link sparse chain reads as qemu reads it.
func TestRawSpans(t *testing.T) {
	needMounts(t)
	for _, name := range []string{"chain-child2.vmdk", "mono-flat.vmdk"} {
		disk := filepath.Join(testfix.RepoRoot(t), "testdata", "vddk", name)
		want := filepath.Join(t.TempDir(), "q.raw")
		run(t, "qemu-img", "convert", "-O", "raw", disk, want)
		d, err := vddk.Open(disk, vddk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mnt := t.TempDir()
		srv, err := fusefs.Mount(mnt, &fusefs.Layout{Raw: []fusefs.RawSource{{Name: "disk", R: d, Size: d.Size(), Span: d.FileSpan}}}, fusefs.MountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
		w, _ := os.ReadFile(want)
		if err != nil || string(got) != string(w) {
			t.Errorf("%s: raw/disk through spans differs from qemu (%v)", name, err)
		}
		srv.Unmount()
		d.Close()
	}
}
