package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/vddk"
	"golang.org/x/sys/unix"
)

// nobody is the unprivileged user the security test runs programs as.
var nobody = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}

// securityImage makes an ext4 disk holding a setuid-root copy of id(1), a character device node
// (/dev/zero's numbers) and a world-writable file, and returns the raw image and a VMDK of it.
func securityImage(t *testing.T, dir string) (raw, vmdk string) {
	t.Helper()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	id, err := exec.LookPath("id")
	if err != nil {
		t.Skip("id not installed")
	}
	b, err := os.ReadFile(id)
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(src, "suid-id")
	if err := os.WriteFile(suid, b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(suid, 0, 0)
	if err := os.Chmod(suid, 0o4755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(src, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	os.WriteFile(filepath.Join(src, "plain.txt"), []byte("guest data\n"), 0o666)
	os.Chmod(filepath.Join(src, "plain.txt"), 0o666)
	raw = filepath.Join(dir, "guest.raw")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, raw, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	vmdk = filepath.Join(dir, "guest.vmdk")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, vmdk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	return raw, vmdk
}

// euidOf runs a program as nobody and returns what `PROGRAM -u` prints: its effective uid.
func euidOf(t *testing.T, prog string) string {
	t.Helper()
	cmd := exec.Command(prog, "-u")
	cmd.SysProcAttr = nobody
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -u as nobody: %v\n%s", prog, err, out)
	}
	return strings.TrimSpace(string(out))
}

// mountOptionsOf returns the per-mount options of dir from /proc/self/mountinfo.
func mountOptionsOf(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == dir {
			return strings.Split(f[5], ",")
		}
	}
	t.Fatalf("%s is not in mountinfo", dir)
	return nil
}

func hasAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// Security defaults: nosuid and nodev in force (mountinfo and statfs), a guest's setuid-root program
// runs without root, its device node does not open, trees refuse every change with EROFS, and raw
// files refuse writes unless --rw. A kernel mount of the same image without nosuid is the control:
// there the same program does run as root, so the test can tell.
func TestSecurityDefaults(t *testing.T) {
	bin := buildBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root for mknod, a setuid-root file and running as another user")
	}
	for _, tool := range []string{"mkfs.ext4", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	// Not t.TempDir: nobody must be able to reach the mount points.
	dir, err := os.MkdirTemp("", "vmdkmount-security-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	raw, vmdk := securityImage(t, dir)

	ctl := filepath.Join(dir, "kernel")
	os.Mkdir(ctl, 0o755)
	if out, err := exec.Command("mount", "-o", "loop,ro,noatime", raw, ctl).CombinedOutput(); err != nil {
		t.Fatalf("loop mount: %v\n%s", err, out)
	}
	control := euidOf(t, filepath.Join(ctl, "suid-id"))
	testfix.Unmount(t, ctl)
	if control != "0" {
		t.Fatalf("control: the setuid-root program runs with euid %s even where setuid is allowed", control)
	}

	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, rw := range []bool{false, true} {
		args := []string{"-o", "allow_other", vmdk, mnt}
		if rw {
			args = append([]string{"--rw"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v\n%s", args, err, out)
		}
		checkSecurity(t, mnt, rw)
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v\n%s", err, out)
		}
	}
}

func checkSecurity(t *testing.T, mnt string, rw bool) {
	t.Helper()
	opts := mountOptionsOf(t, mnt)
	if !hasAll(opts, "nosuid", "nodev") || hasAll(opts, "ro") == rw {
		t.Errorf("rw=%v: mount options %v", rw, opts)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(mnt, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Flags&unix.ST_NOSUID == 0 || sfs.Flags&unix.ST_NODEV == 0 {
		t.Errorf("rw=%v: statfs flags %#x lack ST_NOSUID|ST_NODEV", rw, sfs.Flags)
	}
	tree := filepath.Join(mnt, "disk")
	suid := filepath.Join(tree, "suid-id")
	var st unix.Stat_t
	if err := unix.Stat(suid, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_ISUID == 0 || st.Uid != 0 {
		t.Errorf("the guest's setuid-root file shows mode %o uid %d", st.Mode, st.Uid)
	}
	if euid := euidOf(t, suid); euid != "65534" {
		t.Errorf("rw=%v: the guest's setuid-root program ran with euid %s", rw, euid)
	}
	dev := filepath.Join(tree, "zero")
	if err := unix.Stat(dev, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 5) {
		t.Errorf("the device node: %v, mode %o rdev %#x", err, st.Mode, st.Rdev)
	}
	if f, err := os.Open(dev); err == nil {
		f.Close()
		t.Errorf("rw=%v: the guest's device node opened on the host", rw)
	} else if !errors.Is(err, syscall.EACCES) {
		t.Errorf("rw=%v: opening the device node: %v, want EACCES", rw, err)
	}
	plain := filepath.Join(tree, "plain.txt")
	changes := map[string]func() error{
		"open for writing": func() error {
			f, err := os.OpenFile(plain, os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		},
		"create":   func() error { return closeOf(os.OpenFile(filepath.Join(tree, "new"), os.O_CREATE|os.O_WRONLY, 0o644)) },
		"mkdir":    func() error { return os.Mkdir(filepath.Join(tree, "newdir"), 0o755) },
		"chmod":    func() error { return os.Chmod(plain, 0o600) },
		"chown":    func() error { return os.Chown(plain, 1, 1) },
		"truncate": func() error { return os.Truncate(plain, 0) },
		"remove":   func() error { return os.Remove(plain) },
		"rename":   func() error { return os.Rename(plain, filepath.Join(tree, "moved")) },
		"link":     func() error { return os.Link(plain, filepath.Join(tree, "hard")) },
		"symlink":  func() error { return os.Symlink("plain.txt", filepath.Join(tree, "soft")) },
		"setxattr": func() error { return unix.Setxattr(plain, "user.x", []byte("1"), 0) },
		"mknod":    func() error { return unix.Mknod(filepath.Join(tree, "fifo"), unix.S_IFIFO|0o644, 0) },
	}
	for what, change := range changes {
		if err := change(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("rw=%v: %s in a file tree: %v, want EROFS", rw, what, err)
		}
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "guest data\n" {
		t.Errorf("plain.txt after the refused changes: %q %v", b, err)
	}
	// The synthetic folders (the mount's root and raw/) refuse changes too.
	rawDisk := filepath.Join(mnt, "raw", "disk")
	synthetic := map[string]func() error{
		"remove raw/disk": func() error { return os.Remove(rawDisk) },
		"rename raw/disk": func() error { return os.Rename(rawDisk, filepath.Join(mnt, "raw", "d")) },
		"mkdir at root":   func() error { return os.Mkdir(filepath.Join(mnt, "x"), 0o755) },
		"rmdir a tree":    func() error { return os.Remove(tree) },
	}
	for what, change := range synthetic {
		if err := change(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("rw=%v: %s: %v, want EROFS", rw, what, err)
		}
	}
	// Raw files keep their size, mode and owner; without --rw the kernel refuses first.
	resize, chmod := syscall.EROFS, syscall.EROFS
	if rw {
		resize, chmod = syscall.EINVAL, syscall.EPERM
	}
	if err := os.Truncate(rawDisk, 0); !errors.Is(err, resize) {
		t.Errorf("rw=%v: truncate raw/disk: %v, want %v", rw, err, resize)
	}
	if err := os.Chmod(rawDisk, 0o777); !errors.Is(err, chmod) {
		t.Errorf("rw=%v: chmod raw/disk: %v, want %v", rw, err, chmod)
	}
	if _, err := os.Stat(rawDisk); err != nil {
		t.Errorf("rw=%v: raw/disk after the refused changes: %v", rw, err)
	}
	err := closeOf(os.OpenFile(rawDisk, os.O_WRONLY, 0))
	switch {
	case rw && err != nil:
		t.Errorf("--rw: raw/disk does not open for writing: %v", err)
	case !rw && !errors.Is(err, syscall.EROFS):
		t.Errorf("raw/disk opened for writing without --rw: %v, want EROFS", err)
	}
}

func closeOf(f *os.File, err error) error {
	if err == nil {
		f.Close()
	}
	return err
}

// Extents outside the disk's folder are refused unless --allow-external-extents (a flat extent reached
// through ".."), while a parent in another folder opens when it is itself a VMDK (a linked clone).
func TestExternalPathsConfined(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	disks, outside := filepath.Join(dir, "disks"), filepath.Join(dir, "outside")
	os.Mkdir(disks, 0o755)
	os.Mkdir(outside, 0o755)
	secret := bytes.Repeat([]byte("secret! "), 512)
	os.WriteFile(filepath.Join(outside, "secret.bin"), secret, 0o644)
	flat := filepath.Join(disks, "escape.vmdk")
	os.WriteFile(flat, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"+
		"RW 8 FLAT \"../outside/secret.bin\" 0\n"), 0o644)
	base := filepath.Join(outside, "base.vmdk")
	if err := vddk.Create(base, vddk.CreateParams{Type: vddk.TypeMonolithicSparse, Capacity: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(disks, "child.vmdk")
	if err := vddk.CreateChild(base, child, ""); err != nil {
		t.Fatal(err)
	}
	mnt := mountPoint(t, bin, dir)
	out, err := exec.Command(bin, "--raw", flat, mnt).CombinedOutput()
	if err == nil || isMounted(mnt) {
		exec.Command(bin, "umount", mnt).Run()
		t.Errorf("escape.vmdk mounted though its extent is outside its folder")
	} else if !strings.Contains(string(out), "leaves the disk's folder") || !strings.Contains(string(out), "--allow-external-extents") {
		t.Errorf("the refusal does not say why, or which option allows it: %s", out)
	}
	for _, c := range []struct {
		disk  string
		flags []string
		want  []byte
	}{
		{flat, []string{"--allow-external-extents"}, secret},
		{child, nil, make([]byte, 1<<20)},
	} {
		args := append(append([]string{"--raw"}, c.flags...), c.disk, mnt)
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(c.disk), c.flags, err, out)
		}
		got, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
		exec.Command(bin, "umount", mnt).Run()
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: read %d bytes, %v; want %d", filepath.Base(c.disk), len(got), err, len(c.want))
		}
	}
}
