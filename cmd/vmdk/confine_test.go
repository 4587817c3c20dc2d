package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// runTimed runs the binary and fails the test when it hangs (a FIFO opened in blocking mode).
func runTimed(t *testing.T, bin string, args ...string) ([]byte, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("vmdk %v hung", args)
	}
	return out.Bytes(), errOut.Bytes(), err
}

func flatDescriptor(extent string) []byte {
	return []byte(fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 8 FLAT %q 0\n", extent))
}

// The race of issue 14 through the binary: while another user swaps the flat extent of a disk in its
// folder between the real file, a symlink to a root-only file and a FIFO, `vmdk cat` run hundreds of
// times never prints a byte of that file and never hangs.
func TestCatRace(t *testing.T) {
	bin := testfix.Binary(t, "vmdk")
	dir, secretDir := t.TempDir(), t.TempDir()
	marker := fmt.Sprintf("MARKER-%d-%d", os.Getpid(), time.Now().UnixNano())
	os.WriteFile(filepath.Join(secretDir, "root-only"), []byte(strings.Repeat(marker, 4096/len(marker)+1)[:4096]), 0o600)
	good := bytes.Repeat([]byte("g"), 4096)
	os.WriteFile(filepath.Join(dir, "good.bin"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "disk-flat.vmdk"), good, 0o644)
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, flatDescriptor("disk-flat.vmdk"), 0o644)
	stop := testfix.StartSwapper(t, dir, "disk-flat.vmdk", "good.bin", filepath.Join(secretDir, "root-only"))
	var served, refused int
	start := time.Now()
	for i := 0; i < 400 || (served == 0 || refused == 0) && time.Since(start) < time.Minute; i++ {
		out, errOut, err := runTimed(t, bin, "cat", disk)
		if bytes.Contains(out, []byte(marker)) || bytes.Contains(errOut, []byte(marker)) {
			t.Fatalf("run %d printed the root-only file", i)
		}
		switch {
		case err == nil && bytes.Equal(out, good):
			served++
		case err != nil && (bytes.Contains(errOut, []byte("leaves the disk's folder")) || bytes.Contains(errOut, []byte("is a FIFO"))):
			refused++
		case err != nil && bytes.Contains(errOut, []byte("not found")):
		default:
			t.Fatalf("run %d: %v, %d bytes\n%s", i, err, len(out), errOut)
		}
	}
	t.Logf("%d swaps; %d runs printed the real extent, %d refused", stop(), served, refused)
	if served == 0 || refused == 0 {
		t.Errorf("the swap did not race the runs (served %d, refused %d)", served, refused)
	}
}

// `vmdk info` of a FIFO is refused at once, naming it.
func TestInfoFIFO(t *testing.T) {
	bin := testfix.Binary(t, "vmdk")
	fifo := filepath.Join(t.TempDir(), "disk.vmdk")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"info", "cat", "blocks"} {
		_, errOut, err := runTimed(t, bin, cmd, fifo)
		if err == nil || !bytes.Contains(errOut, []byte("is a FIFO")) || !bytes.Contains(errOut, []byte(fifo)) {
			t.Errorf("vmdk %s of a FIFO: %v %s", cmd, err, errOut)
		}
	}
}

// `vmdk rename` and `vmdk rm` of a descriptor whose extent is "disk/../../victim.txt", with a decoy of
// that name in the folder, never move or delete the file outside; `vmdk child` makes no child that
// `vmdk info` refuses.
func TestAdminEscape(t *testing.T) {
	bin := testfix.Binary(t, "vmdk")
	top := t.TempDir()
	dir := filepath.Join(top, "vm")
	os.Mkdir(dir, 0o755)
	victim := filepath.Join(top, "victim.txt")
	want := bytes.Repeat([]byte("victim "), 600)
	os.WriteFile(victim, want, 0o644)
	os.WriteFile(filepath.Join(dir, "victim.txt"), make([]byte, 4096), 0o644)
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, flatDescriptor("disk/../../victim.txt"), 0o644)
	intact := func(step string) {
		t.Helper()
		if b, err := os.ReadFile(victim); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("after %s the outside file is gone or changed: %v", step, err)
		}
	}
	if out, _, _ := runTimed(t, bin, "cat", disk); bytes.Contains(out, []byte("victim")) {
		t.Fatal("cat read the outside file")
	}
	_, errOut, err := runTimed(t, bin, "rename", disk, filepath.Join(dir, "disk2.vmdk"))
	if err != nil {
		t.Fatalf("rename: %v %s", err, errOut)
	}
	intact("rename")
	if _, errOut, err := runTimed(t, bin, "rm", filepath.Join(dir, "disk2.vmdk")); err != nil {
		t.Fatalf("rm: %v %s", err, errOut)
	}
	intact("rm")
	// Without the decoy, every command refuses the disk.
	os.WriteFile(disk, flatDescriptor("disk/../../victim.txt"), 0o644)
	os.Remove(filepath.Join(dir, "victim.txt"))
	for _, args := range [][]string{{"info", disk}, {"rename", disk, filepath.Join(dir, "d3.vmdk")}, {"rm", disk}, {"grow", disk, "1M"}, {"child", disk, filepath.Join(dir, "c.vmdk")}} {
		if _, errOut, err := runTimed(t, bin, args...); err == nil || !bytes.Contains(errOut, []byte("leaves the disk's folder")) {
			t.Errorf("vmdk %v: %v %s", args, err, errOut)
		}
		intact(args[0])
	}
	if _, err := os.Lstat(filepath.Join(dir, "c.vmdk")); err == nil {
		t.Error("vmdk child made a child that vmdk info refuses")
	}
}
