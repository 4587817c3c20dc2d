package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// make install DESTDIR=… lays out the commands under PREFIX and the mount helper under /sbin, linked to
// the installed vmdkmount.
func TestMakeInstallDestdir(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dest := t.TempDir()
	out, err := exec.Command("make", "-C", testfix.RepoRoot(t), "install", "DESTDIR="+dest, "BIN="+filepath.Join(t.TempDir(), "bin")).CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, p := range []string{"usr/local/bin/vmdk", "usr/local/bin/vmdkmount"} {
		if st, err := os.Stat(filepath.Join(dest, p)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dest, "sbin", "mount.vmdk")); err != nil || target != "/usr/local/bin/vmdkmount" {
		t.Errorf("sbin/mount.vmdk links to %q (%v)", target, err)
	}
}

// The fstab route: make install puts /sbin/mount.vmdk in place (PREFIX in a temporary folder, removed
// at the end with the helper), and `mount` with fstab type "vmdk" mounts through it, even with
// libvmdk-utils' own vmdkmount first on the PATH. Then list --mounts shows the mount with its disk, a
// second mount on the same folder is refused, and umount(8) ends it.
func TestMountHelperThroughMount(t *testing.T) {
	bin := buildBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("mount(8) runs helpers for root only")
	}
	const helper = "/sbin/mount.vmdk"
	if _, err := os.Lstat(helper); err == nil {
		t.Skipf("%s is already installed: not replacing it", helper)
	}
	if _, err := os.Stat("/usr/bin/vmdkmount"); err != nil && os.Getenv("CI") != "" {
		t.Fatal("libvmdk-utils missing in CI: the test is meant to run beside its /usr/bin/vmdkmount")
	}
	prefix := t.TempDir()
	t.Cleanup(func() {
		// Remove the helper only if it is the one this test made.
		if target, err := os.Readlink(helper); err == nil && strings.HasPrefix(target, prefix) {
			os.Remove(helper)
		}
	})
	out, err := exec.Command("make", "-C", testfix.RepoRoot(t), "install", "PREFIX="+prefix, "BIN="+filepath.Join(t.TempDir(), "bin")).CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	c := corpusDir(t)
	dir := t.TempDir()
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	mnt := mountPoint(t, bin, dir)
	fstab := filepath.Join(dir, "fstab")
	os.WriteFile(fstab, []byte(disk+" "+mnt+" vmdk ro,allow_other,nofail 0 0\n"), 0o644)
	mount := exec.Command("mount", "-T", fstab, mnt)
	mount.Env = append(os.Environ(), "PATH=/usr/bin:/bin:/usr/sbin:/sbin") // libvmdk's vmdkmount first
	if out, err := mount.CombinedOutput(); err != nil {
		t.Fatalf("mount -T fstab: %v\n%s", err, out)
	}
	line := mountLine(mnt)
	if !strings.HasPrefix(line, disk+" "+mnt+" fuse.vmdkmount ro,") || !strings.Contains(line, "allow_other") {
		t.Errorf("/proc/mounts: %q", line)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "disk", "passwords.txt")); err != nil || !strings.HasPrefix(string(got), "place,user,password\n") {
		t.Errorf("passwords.txt through the helper's mount: %q %v", got, err)
	}

	lout, _, code := runBin(t, bin, "list", "--mounts", "--json")
	var l struct{ Mounts []activeMount }
	json.Unmarshal([]byte(lout), &l)
	found := false
	for _, m := range l.Mounts {
		found = found || (m.Mountpoint == mnt && m.Disks == disk)
	}
	if code != 0 || !found {
		t.Errorf("list --mounts: exit %d, %s", code, lout)
	}
	text, _, _ := runBin(t, bin, "list", "--mounts")
	if !strings.Contains(text, mnt+"  "+disk+"  ro,") {
		t.Errorf("list --mounts:\n%s", text)
	}
	want := "vmdkmount: " + mnt + " is already a vmdkmount mount (of " + disk + "): unmount it first (vmdkmount umount " + mnt + ")\n"
	if _, errOut, code := runBin(t, bin, disk, mnt); code != 1 || errOut != want {
		t.Errorf("second mount on the same folder: exit %d, %q", code, errOut)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Errorf("umount: %v %s", err, out)
	}
	if isMounted(mnt) {
		t.Error("still mounted after umount")
	}

	// mount -t vmdk with the options mount(8) adds itself ("rw" when the line says nothing): read-only.
	if out, err := exec.Command("mount", "-t", "vmdk", "-o", "noatime,x-systemd.automount,nofail", disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -t vmdk: %v\n%s", err, out)
	}
	line = mountLine(mnt)
	exec.Command("umount", mnt).Run()
	if !strings.Contains(line, " fuse.vmdkmount ro,") {
		t.Errorf("mount -t vmdk without ro: %q", line)
	}
}

// mountLine is dir's line of /proc/mounts.
func mountLine(dir string) string {
	b, _ := os.ReadFile("/proc/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == dir {
			return l
		}
	}
	return ""
}

// A user's mount with allow_other, which /etc/fuse.conf does not allow: fusermount's own reason reaches
// the caller's standard error, and nothing is mounted.
func TestDaemonPassesFusermountMessage(t *testing.T) {
	bin := buildBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	if conf, _ := os.ReadFile("/etc/fuse.conf"); strings.Contains("\n"+string(conf), "\nuser_allow_other") {
		t.Skip("/etc/fuse.conf allows allow_other to users")
	}
	dir := publicDir(t)
	disk := copyCorpusDisk(t, corpusDir(t), "dfvfs/ext2.vmdk", dir)
	mnt := mountPoint(t, bin, dir)
	os.Chown(mnt, 65534, 65534)
	userBin := filepath.Join(dir, "vmdkmount")
	b, _ := os.ReadFile(bin)
	os.WriteFile(userBin, b, 0o755)
	cmd := exec.Command(userBin, "-o", "allow_other", disk, mnt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.HasSuffix(string(out), "fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf\n"+
		"vmdkmount: mount "+mnt+": fusermount refused it (its message is above)\n") || isMounted(mnt) {
		t.Errorf("exit %v, output:\n%s", err, out)
	}
}

// A disk damaged under a running mount (its flat extent cut short): every failing read answers EIO,
// and the background daemon's --log names the cause — the file, the block, why — once per cause.
func TestReadErrorsLoggedOncePerCause(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	dir := t.TempDir()
	flat, err := os.ReadFile(filepath.Join(c, "dfvfs", "ext2.raw"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "d-flat.vmdk"), flat, 0o644)
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
		"RW " + strconv.Itoa(len(flat)/512) + " FLAT \"d-flat.vmdk\" 0\n\nddb.adapterType = \"ide\"\n"
	disk := filepath.Join(dir, "d.vmdk")
	os.WriteFile(disk, []byte(desc), 0o644)
	mnt := mountPoint(t, bin, dir)
	logFile := filepath.Join(dir, "mount.log")
	if _, errOut, code := runBin(t, bin, "--log", logFile, disk, mnt); code != 0 {
		t.Fatalf("mount: exit %d %s", code, errOut)
	}
	os.Truncate(filepath.Join(dir, "d-flat.vmdk"), 64<<10)
	for range 3 {
		for _, p := range []string{"passwords.txt", "a_directory/a_file"} {
			if _, err := os.ReadFile(filepath.Join(mnt, "disk", p)); !errors.Is(err, syscall.EIO) {
				t.Errorf("%s: %v, want EIO", p, err)
			}
		}
	}
	exec.Command(bin, "umount", mnt).Run()
	b, _ := os.ReadFile(logFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per cause (2):\n%s", len(lines), b)
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, filepath.Join(dir, "d-flat.vmdk")+": flat extent ends before offset") {
			t.Errorf("log line %q", l)
		}
	}
}
