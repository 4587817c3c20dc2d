package main

import (
	"bytes"
	"context"
	"crypto/sha256"
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

// runFor runs the binary with a deadline: a FIFO opened in blocking mode would hang it.
func runFor(t *testing.T, d time.Duration, dir string, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v hung for %v", filepath.Base(bin), args, d)
	}
	return string(out), err
}

// A FIFO as the DISK, or as an extent, is refused at once with a message naming it; the background
// daemon does not stay behind.
func TestFIFODisk(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "disk.fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(dir, "fifoext.vmdk")
	os.WriteFile(desc, []byte("# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 8 FLAT \"disk.fifo\" 0\n"), 0o644)
	mnt := mountPoint(t, bin, dir)
	for _, args := range [][]string{{fifo, mnt}, {"-f", fifo, mnt}, {"list", fifo}, {desc, mnt}, {"list", desc}} {
		out, err := runFor(t, 10*time.Second, dir, nil, bin, args...)
		if err == nil || !strings.Contains(out, "is a FIFO") || !strings.Contains(out, "disk.fifo") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
		if isMounted(mnt) {
			t.Fatalf("%v mounted", args)
		}
	}
}

// tempDirEnv gives the binary a temporary folder of its own, to see what it leaves there.
func tempDirEnv(t *testing.T) (string, []string) {
	tmp := t.TempDir()
	return tmp, []string{"TMPDIR=" + tmp}
}

func leftovers(tmp string) []string {
	var names []string
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// --rw with relative paths (a copy in img/, and the bundled sample reached by a relative path) mounts,
// takes writes that read back, leaves the disk's bytes as they were and nothing in the temporary folder.
// A mount that fails after the redo log was made removes it too, at --redo PATH as well.
func TestRelativeRW(t *testing.T) {
	bin := buildBinary(t)
	cwd := t.TempDir()
	os.Mkdir(filepath.Join(cwd, "img"), 0o755)
	sample := filepath.Join(testfix.RepoRoot(t), "testdata", "sample", "sample-gpt.vmdk")
	data, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cwd, "img", "disk.vmdk"), data, 0o644)
	relSample, err := filepath.Rel(cwd, sample)
	if err != nil {
		t.Fatal(err)
	}
	mountPoint(t, bin, cwd)
	tmp, env := tempDirEnv(t)
	for _, disk := range []string{"img/disk.vmdk", relSample} {
		before := sha256.Sum256(data)
		if out, err := runFor(t, time.Minute, cwd, env, bin, "--rw", disk, "mnt"); err != nil {
			t.Fatalf("--rw %s: %v\n%s", disk, err, out)
		}
		f, err := os.OpenFile(filepath.Join(cwd, "mnt", "raw", "disk"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("written through --rw")
		f.WriteAt(msg, 3<<20)
		back := make([]byte, len(msg))
		f.ReadAt(back, 3<<20)
		f.Close()
		if !bytes.Equal(back, msg) {
			t.Errorf("%s: the write reads back %q", disk, back)
		}
		if l := leftovers(tmp); len(l) != 0 {
			t.Errorf("%s: the temporary redo log is visible while mounted: %v", disk, l)
		}
		if out, err := exec.Command(bin, "umount", filepath.Join(cwd, "mnt")).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v\n%s", err, out)
		}
		if sum(t, filepath.Join(cwd, disk)) != before {
			t.Errorf("%s changed under --rw", disk)
		}
	}
	// A mount that fails after the redo log was made.
	redo := filepath.Join(cwd, "img", "kept.vmdk")
	for _, extra := range [][]string{nil, {"--redo", "img/kept.vmdk", "--keep-redo"}} {
		args := append(append([]string{"--rw", "--volume", "nosuch"}, extra...), "img/disk.vmdk", "mnt")
		if out, err := runFor(t, time.Minute, cwd, env, bin, args...); err == nil {
			t.Errorf("%v mounted", args)
		} else if strings.Contains(out, "external-paths") {
			t.Errorf("the message names an option that does not exist: %s", out)
		}
		if l := leftovers(tmp); len(l) != 0 {
			t.Errorf("%v: a failed mount left %v", extra, l)
		}
		if _, err := os.Lstat(redo); err == nil {
			t.Errorf("%v: a failed mount left its redo log", extra)
		}
	}
}

// kill -9 of a --rw mount leaves no redo log anywhere: it was unlinked as soon as it was open.
func TestKillRWLeavesNoRedo(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(testfix.RepoRoot(t), "testdata", "sample", "sample-mbr.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, data, 0o644)
	mnt := mountPoint(t, bin, dir)
	tmp, env := tempDirEnv(t)
	cmd := exec.Command(bin, "-f", "--rw", disk, mnt)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && !isMounted(mnt); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !isMounted(mnt) {
		cmd.Process.Kill()
		t.Fatal("the mount did not come up")
	}
	f, err := os.OpenFile(filepath.Join(mnt, "raw", "disk"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("redo data "), 1000), 1<<20); err != nil {
		t.Error(err)
	}
	f.Close()
	// While it runs, the redo log is open but has no name.
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
	deleted := 0
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", cmd.Process.Pid, fd.Name())); strings.HasPrefix(target, tmp) && strings.HasSuffix(target, "(deleted)") {
			deleted++
		}
	}
	if deleted == 0 {
		t.Error("no unlinked redo log is open in the mount process")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	exec.Command(bin, "umount", mnt).Run()
	if l := leftovers(tmp); len(l) != 0 {
		t.Errorf("kill -9 left %v in the temporary folder", l)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "disk.vmdk" && e.Name() != "mnt" {
			t.Errorf("kill -9 left %s beside the disk", e.Name())
		}
	}
}

// A linked clone whose base lies in a sibling folder mounts (and reads its base's data); a parent hint
// at /etc/passwd is refused and serves nothing.
func TestLinkedCloneAndPasswdParent(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "base"), 0o755)
	os.Mkdir(filepath.Join(dir, "clone"), 0o755)
	base := filepath.Join(dir, "base", "base.vmdk")
	if err := vddk.Create(base, vddk.CreateParams{Type: vddk.TypeMonolithicSparse, Capacity: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w, err := vddk.Open(base, vddk.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("from the base"), 4096)
	w.Close()
	clone := filepath.Join(dir, "clone", "clone.vmdk")
	if err := vddk.CreateChild(base, clone, ""); err != nil {
		t.Fatal(err)
	}
	mnt := mountPoint(t, bin, dir)
	if out, err := runFor(t, time.Minute, dir, nil, bin, "--raw", clone, mnt); err != nil {
		t.Fatalf("linked clone: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
	exec.Command(bin, "umount", mnt).Run()
	if err != nil || !bytes.Equal(got[4096:4096+13], []byte("from the base")) {
		t.Errorf("the clone does not read its base: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "clone", "pw-flat.bin"), make([]byte, 4096), 0o644)
	pw := filepath.Join(dir, "clone", "pw.vmdk")
	os.WriteFile(pw, []byte("# Disk DescriptorFile\nversion=1\nCID=00000002\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"+
		"parentFileNameHint=\"/etc/passwd\"\n\nRW 8 FLAT \"pw-flat.bin\" 0\n"), 0o644)
	out, err := runFor(t, time.Minute, dir, nil, bin, "--raw", pw, mnt)
	if err == nil || isMounted(mnt) {
		t.Fatalf("a parent hint at /etc/passwd mounted: %s", out)
	}
	if !strings.Contains(out, "/etc/passwd") || !strings.Contains(out, "is not a VMDK") || strings.Contains(out, "root:") {
		t.Errorf("the refusal: %s", out)
	}
}

// Mounting files one does not own reads them without O_NOATIME (the kernel refuses it to others), so
// the mount says once that their access times will change. Run as nobody on root's files.
func TestATimeNotice(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the mount as another user")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(testfix.RepoRoot(t), "testdata", "sample", "sample-mbr.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, data, 0o644)
	// The user must reach the disk and own the mount point.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	bin2 := filepath.Join(dir, "vmdkmount")
	b, _ := os.ReadFile(bin)
	os.WriteFile(bin2, b, 0o755)
	mnt := mountPoint(t, bin, dir)
	os.Chown(mnt, testfix.SwapUID, testfix.SwapUID)
	cmd := exec.Command(bin2, "--raw", disk, mnt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testfix.SwapUID, Gid: testfix.SwapUID}}
	cmd.Env = append(os.Environ(), "HOME=/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("an unprivileged FUSE mount is not possible here: %v\n%s", err, out)
	}
	exec.Command(bin, "umount", mnt).Run()
	t.Logf("as nobody: %s", out)
	if !strings.Contains(string(out), "not yours") || !strings.Contains(string(out), "access time") || strings.Count(string(out), "\n") != 1 {
		t.Errorf("no one-line notice about access times: %q", out)
	}
	// As the owner, no notice.
	out, err = exec.Command(bin, "--raw", disk, mnt).CombinedOutput()
	exec.Command(bin, "umount", mnt).Run()
	if err != nil || len(out) != 0 {
		t.Errorf("the owner's mount: %v %q", err, out)
	}
}

// The race of issue 14 through the mount: while another user swaps the flat extent in the disk's
// folder between the real file, a symlink to a root-only file and a FIFO, mounts never serve a byte of
// that file and never hang (the daemon answers or refuses at once).
func TestMountRace(t *testing.T) {
	bin := buildBinary(t)
	top := t.TempDir()
	dir, secretDir := filepath.Join(top, "disk"), t.TempDir()
	os.Mkdir(dir, 0o755)
	marker := fmt.Sprintf("MARKER-%d-%d", os.Getpid(), time.Now().UnixNano())
	os.WriteFile(filepath.Join(secretDir, "root-only"), []byte(strings.Repeat(marker, 4096/len(marker)+1)[:4096]), 0o600)
	good := bytes.Repeat([]byte("g"), 4096)
	os.WriteFile(filepath.Join(dir, "good.bin"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "disk-flat.vmdk"), good, 0o644)
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, []byte("# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 8 FLAT \"disk-flat.vmdk\" 0\n"), 0o644)
	mnt := mountPoint(t, bin, top)
	stop := testfix.StartSwapper(t, dir, "disk-flat.vmdk", "good.bin", filepath.Join(secretDir, "root-only"))
	var served, refused int
	start := time.Now()
	for i := 0; i < 60 || (served == 0 || refused == 0) && time.Since(start) < time.Minute; i++ {
		out, err := runFor(t, 20*time.Second, top, nil, bin, "--raw", disk, mnt)
		if strings.Contains(out, marker) {
			t.Fatalf("mount %d printed the root-only file", i)
		}
		if err != nil {
			if !strings.Contains(out, "leaves the disk's folder") && !strings.Contains(out, "is a FIFO") && !strings.Contains(out, "not found") {
				t.Fatalf("mount %d: %v\n%s", i, err, out)
			}
			refused++
			continue
		}
		got, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
		if out, uerr := exec.Command(bin, "umount", mnt).CombinedOutput(); uerr != nil {
			t.Fatalf("umount: %v\n%s", uerr, out)
		}
		if bytes.Contains(got, []byte(marker)) {
			t.Fatalf("mount %d served the root-only file", i)
		}
		if err != nil || !bytes.Equal(got, good) {
			t.Fatalf("mount %d read %d bytes, %v", i, len(got), err)
		}
		served++
	}
	t.Logf("%d swaps; %d mounts served the real extent, %d refused", stop(), served, refused)
	if served == 0 || refused == 0 {
		t.Errorf("the swap did not race the mounts (served %d, refused %d)", served, refused)
	}
}
