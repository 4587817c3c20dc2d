package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/vddk"
)

// buildBinary returns the vmdkmount binary built for this test run, for tests that mount: it skips
// where FUSE is missing.
func buildBinary(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("fusermount3 missing in CI")
		}
		t.Skip("fusermount3 not installed")
	}
	return binary(t)
}

// binary builds vmdkmount once per test run.
func binary(t *testing.T) string { return testfix.Binary(t, "vmdkmount") }

func TestMain(m *testing.M) { testfix.MainWithBinaries(m) }

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// copyCorpusDisk copies a corpus disk (a single-file VMDK) into dir and returns the copy's path: tests
// that mount it may write redo logs beside it and change its times.
func copyCorpusDisk(t *testing.T, corpus, rel, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpus, rel))
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, filepath.Base(rel))
	if err := os.WriteFile(disk, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return disk
}

func isMounted(dir string) bool {
	b, _ := os.ReadFile("/proc/mounts")
	return strings.Contains(string(b), " "+dir+" ")
}

// mountPoint makes dir/mnt and, should the test stop while something is mounted there, unmounts it at
// the end, so a failing test leaves no mount behind.
func mountPoint(t *testing.T, bin, dir string) string {
	t.Helper()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(mnt) {
			exec.Command(bin, "umount", mnt).Run()
		}
	})
	return mnt
}

// Background mount, forensic read-only guarantees (bytes and times of the source unchanged after a full
// walk), kill -9 and a stale mount cleared by umount, then a new mount.
func TestMountCycle(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	dir := t.TempDir()
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	before := sum(t, disk)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(disk, old, old)
	mnt := mountPoint(t, bin, dir)

	if out, err := exec.Command(bin, disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	if !isMounted(mnt) {
		t.Fatal("not mounted after vmdkmount returned")
	}
	got, err := os.ReadFile(filepath.Join(mnt, "disk", "passwords.txt"))
	if err != nil || !strings.HasPrefix(string(got), "place,user,password\n") || len(got) != 116 {
		t.Errorf("passwords.txt: %q %v", got, err)
	}
	// A full walk that reads everything.
	filepath.Walk(mnt, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			os.ReadFile(p)
		}
		return nil
	})
	if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	st, _ := os.Stat(disk)
	if !st.ModTime().Equal(old) {
		t.Errorf("the source's modification time changed to %v", st.ModTime())
	}
	if at := st.Sys().(*syscall.Stat_t).Atim; at.Sec != old.Unix() {
		t.Errorf("the source's access time changed to %d", at.Sec)
	}
	if sum(t, disk) != before {
		t.Error("the source's bytes changed")
	}

	// Kill the daemon: the mount goes stale; umount clears it and a new mount works.
	if out, err := exec.Command(bin, disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	if err := exec.Command("pkill", "-9", "-f", bin+" "+disk).Run(); err != nil {
		t.Fatalf("kill -9 of the daemon: %v", err)
	}
	// The mount must really be stale here, or the umount below proves nothing.
	var stale error
	for range 50 {
		if _, stale = os.ReadDir(mnt); errors.Is(stale, syscall.ENOTCONN) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(stale, syscall.ENOTCONN) {
		t.Fatalf("after kill -9 the mount answers %v, want ENOTCONN", stale)
	}
	if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount of a stale mount: %v\n%s", err, out)
	}
	if isMounted(mnt) {
		t.Fatal("stale mount not cleared")
	}
	if out, err := exec.Command(bin, "--volume", "disk", disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount after a stale one: %v\n%s", err, out)
	}
	var s syscall.Stat_t
	syscall.Stat(filepath.Join(mnt, "passwords.txt"), &s)
	exec.Command(bin, "umount", mnt).Run()
	if s.Ino != 14 {
		t.Errorf("--volume shows inode %d for passwords.txt, the guest's is 14", s.Ino)
	}
	// Errors before the mount is ready reach the caller with a non-zero exit.
	out, err := exec.Command(bin, filepath.Join(c, "vmdk-forensic", "ms3-win.vmdk"), mnt).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "disk-s001.vmdk") || isMounted(mnt) {
		t.Errorf("mount of a disk with missing extents: %v %s", err, out)
	}
}

// --rw: writes through raw/disk land in the redo log; the base is unchanged; with --keep-redo qemu reads
// the chain with the writes.
func TestMountRedo(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	before := sum(t, disk)
	mnt := mountPoint(t, bin, dir)
	redo := filepath.Join(dir, "redo", "changes.vmdk")
	os.Mkdir(filepath.Dir(redo), 0o755)
	if out, err := exec.Command(bin, "--rw", "--redo", redo, "--keep-redo", disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "raw", "disk"), os.O_WRONLY, 0)
	if err != nil {
		exec.Command(bin, "umount", mnt).Run()
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("written through FUSE "), 500)
	if _, err := f.WriteAt(payload, 3<<20+100); err != nil {
		t.Error(err)
	}
	f.Close()
	back := make([]byte, len(payload))
	rf, _ := os.Open(filepath.Join(mnt, "raw", "disk"))
	rf.ReadAt(back, 3<<20+100)
	rf.Close()
	if !bytes.Equal(back, payload) {
		t.Error("written bytes do not read back")
	}
	if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	if sum(t, disk) != before {
		t.Error("the base disk changed")
	}
	raw := filepath.Join(dir, "chain.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", redo, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img reads the kept redo log: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(raw)
	orig, _ := os.ReadFile(filepath.Join(c, "dfvfs", "ext2.raw"))
	want := append([]byte{}, orig...)
	copy(want[3<<20+100:], payload)
	if !bytes.Equal(got, want) {
		t.Error("qemu reads the chain differently from base + writes")
	}
}

// publicDir makes a temporary folder another user can reach (t.TempDir's parent is private to us),
// removed at the end.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vmdkmount-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

// allow_other: a second user reads the mount only when it is given.
func TestAllowOther(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	dir := publicDir(t)
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	mnt := mountPoint(t, bin, dir)
	asNobody := func() error {
		cmd := exec.Command("cat", filepath.Join(mnt, "disk", "a_directory", "another_file"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd.Run()
	}
	for _, allow := range []bool{false, true} {
		args := []string{disk, mnt}
		if allow {
			args = append([]string{"-o", "allow_other"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mount: %v\n%s", err, out)
		}
		err := asNobody()
		exec.Command(bin, "umount", mnt).Run()
		if allow && err != nil {
			t.Errorf("with allow_other, another user cannot read: %v", err)
		}
		if !allow && err == nil {
			t.Error("without allow_other, another user can read")
		}
	}
}

// SIGKILL of the daemon during --rw writes: the base is unchanged, the kept redo log opens and checks
// clean or repairable, and a new mount works after umount.
func TestKillDuringRedoWrites(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	dir := t.TempDir()
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	before := sum(t, disk)
	mnt := mountPoint(t, bin, dir)
	for round := range 3 {
		redo := filepath.Join(dir, fmt.Sprintf("redo%d.vmdk", round))
		if out, err := exec.Command(bin, "--rw", "--redo", redo, "--keep-redo", disk, mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount: %v\n%s", err, out)
		}
		writer := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "raw", "disk"), "bs=64k", "count=2000", "conv=notrunc", "oflag=direct")
		writer.Start()
		time.Sleep(time.Duration(50+100*round) * time.Millisecond)
		if err := exec.Command("pkill", "-9", "-f", bin+" --rw --redo "+redo).Run(); err != nil {
			t.Fatalf("round %d: kill -9 of the daemon: %v", round, err)
		}
		if err := writer.Wait(); err == nil {
			t.Errorf("round %d: the writer finished before the kill; nothing was interrupted", round)
		}
		// The writer fails as soon as the daemon's FUSE connection goes, a moment before the dying
		// daemon has released the redo log's lock: wait until it is gone.
		for i := 0; i < 100 && exec.Command("pgrep", "-f", bin+" --rw --redo "+redo).Run() == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount after kill: %v\n%s", err, out)
		}
		if sum(t, disk) != before {
			t.Fatal("the base disk changed")
		}
		problems, err := vddk.Check(redo, true)
		if err != nil {
			t.Fatalf("the kept redo log does not open: %v", err)
		}
		for _, p := range problems {
			if !p.Repaired {
				t.Errorf("redo log problem left: %v", p)
			}
		}
		if out, err := exec.Command(bin, disk, mnt).CombinedOutput(); err != nil {
			t.Fatalf("new mount: %v\n%s", err, out)
		}
		if _, err := os.ReadFile(filepath.Join(mnt, "disk", "passwords.txt")); err != nil {
			t.Error(err)
		}
		exec.Command(bin, "umount", mnt).Run()
	}
}

// SIGTERM to a foreground mount unmounts it cleanly, and a temporary redo log leaves nothing behind: it
// is unlinked as soon as it is open, so the temporary folder is empty while mounted and writes still
// read back.
func TestSignalAndTemporaryRedo(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	dir := t.TempDir()
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	mnt := mountPoint(t, bin, dir)
	tmp := t.TempDir()
	cmd := exec.Command(bin, "-f", "--rw", disk, mnt)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !isMounted(mnt); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !isMounted(mnt) {
		cmd.Process.Kill()
		t.Fatal("foreground mount did not come up")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("the temporary redo log is visible while mounted: %v", entries)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "raw", "disk"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("scratch"), 1<<20)
	back := make([]byte, 7)
	if _, err := f.ReadAt(back, 1<<20); err != nil || string(back) != "scratch" {
		t.Errorf("the unlinked redo log reads back %q, %v", back, err)
	}
	f.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM did not stop the mount")
	}
	if isMounted(mnt) {
		t.Error("still mounted after SIGTERM")
		exec.Command(bin, "umount", mnt).Run()
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("the temporary redo log was left behind: %v", entries)
	}
}
