package vddk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// flatDesc is a monolithicFlat descriptor of one flat extent of n sectors, with an optional parent.
func flatDesc(extent string, n int, cid, parentCID uint32, hint string) string {
	s := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%08x\ncreateType=\"monolithicFlat\"\n", cid, parentCID)
	if hint != "" {
		s += fmt.Sprintf("parentFileNameHint=%q\n", hint)
	}
	return s + fmt.Sprintf("\nRW %d FLAT %q 0\n", n, extent)
}

// watchdog fails the whole test binary when a step hangs (a FIFO opened without O_NONBLOCK blocks
// forever, and a test timeout would only say so after minutes).
func watchdog(t *testing.T, d time.Duration) {
	tm := time.AfterFunc(d, func() { panic(t.Name() + ": hung for " + d.String()) })
	t.Cleanup(func() { tm.Stop() })
}

// The race of issue 14: another user owns the disk's folder and swaps its flat extent, in a loop, with
// a symlink to a file only root may read (holding a unique marker) and with a FIFO. Thousands of opens
// and reads by root never return a byte of that file, never hang, and see both the real extent and the
// refusal (so the swap really raced the opens).
func TestConfinedOpenRace(t *testing.T) {
	watchdog(t, 2*time.Minute)
	dir := t.TempDir()
	secretDir := t.TempDir()
	marker := []byte(fmt.Sprintf("MARKER-%d-%d-never-served", os.Getpid(), time.Now().UnixNano()))
	target := filepath.Join(secretDir, "root-only.bin")
	if err := os.WriteFile(target, bytes.Repeat(marker, 4096/len(marker)+1)[:4096], 0o600); err != nil {
		t.Fatal(err)
	}
	good := bytes.Repeat([]byte("G"), 4096)
	os.WriteFile(filepath.Join(dir, "good.bin"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "disk-flat.vmdk"), good, 0o644)
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, []byte(flatDesc("disk-flat.vmdk", 8, 1, CIDNone, "")), 0o644)
	stop := testfix.StartSwapper(t, dir, "disk-flat.vmdk", "good.bin", target)

	var served, refused, fifo int
	buf := make([]byte, 4096)
	start := time.Now()
	for i := 0; i < 10000 || (served == 0 || refused == 0) && time.Since(start) < time.Minute; i++ {
		d, err := Open(disk, Options{})
		if err != nil {
			msg := err.Error()
			switch {
			case strings.Contains(msg, "leaves the disk's folder"):
				refused++
			case strings.Contains(msg, "FIFO"):
				fifo++
			case errors.Is(err, ErrFileNotFound):
			default:
				t.Fatalf("open %d: unexpected error %v", i, err)
			}
			continue
		}
		_, err = d.ReadAt(buf, 0)
		d.Close()
		if bytes.Contains(buf, marker[:16]) {
			t.Fatalf("open %d served the root-only file", i)
		}
		if err != nil || !bytes.Equal(buf, good) {
			t.Fatalf("open %d read %q…, %v", i, buf[:16], err)
		}
		served++
	}
	swaps := stop()
	t.Logf("%d swaps; %d opens served the real extent, %d refused the symlink, %d refused the FIFO", swaps, served, refused, fifo)
	if served == 0 || refused == 0 {
		t.Errorf("the swap did not race the opens (served %d, refused %d)", served, refused)
	}
}

// A FIFO is refused at once wherever it appears: as the disk, as a raw image and as an extent.
func TestFIFORefused(t *testing.T) {
	watchdog(t, 30*time.Second)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "disk.fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(dir, "fifoext.vmdk")
	os.WriteFile(desc, []byte(flatDesc("disk.fifo", 8, 1, CIDNone, "")), 0o644)
	for name, open := range map[string]func() error{
		"IsVMDK":           func() error { _, err := IsVMDK(fifo); return err },
		"Open":             func() error { return closeDisk(Open(fifo, Options{})) },
		"OpenRaw":          func() error { return closeDisk(OpenRaw(fifo, Options{})) },
		"extent":           func() error { return closeDisk(Open(desc, Options{})) },
		"extent, external": func() error { return closeDisk(Open(desc, Options{AllowExternalPaths: true})) },
	} {
		err := open()
		if err == nil || !strings.Contains(err.Error(), "is a FIFO") || !strings.Contains(err.Error(), "disk.fifo") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func closeDisk(d *Disk, err error) error {
	if err == nil {
		d.Close()
	}
	return err
}

// Linked clones: a child whose parent lies in a sibling folder ("../base/base.vmdk") or at an absolute
// path opens and reads as qemu-img reads it; a parent hint naming a file that is not a VMDK is refused;
// the parent's own extents stay confined to the parent's folder, which never widens to the child's.
func TestParentInAnotherFolder(t *testing.T) {
	top := t.TempDir()
	baseDir, cloneDir := filepath.Join(top, "base"), filepath.Join(top, "clone")
	os.Mkdir(baseDir, 0o755)
	os.Mkdir(cloneDir, 0o755)
	base := filepath.Join(baseDir, "base.vmdk")
	if err := Create(base, CreateParams{Type: TypeMonolithicSparse, Capacity: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	w, err := Open(base, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt(bytes.Repeat([]byte("base"), 1024), 1<<20)
	w.Close()
	child := filepath.Join(cloneDir, "clone.vmdk")
	if err := CreateChild(base, child, ""); err != nil {
		t.Fatal(err)
	}
	if d, err := Open(child, Options{}); err != nil {
		t.Fatalf("linked clone with its base in a sibling folder: %v", err)
	} else {
		raw := qemuRaw(t, child)
		want, _ := os.Open(raw)
		compareReads(t, d, want, 4<<20, 200, []int64{1 << 20})
		want.Close()
		d.Close()
	}
	// The same child with an absolute hint.
	abs := filepath.Join(cloneDir, "abs.vmdk")
	if err := CreateChild(base, abs, ""); err != nil {
		t.Fatal(err)
	}
	a, err := Open(abs, Options{Writable: true, SingleLink: true})
	if err != nil {
		t.Fatal(err)
	}
	a.links[0].desc.ParentFileNameHint = base
	if err := a.links[0].rewriteDescriptor(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if d, err := Open(abs, Options{}); err != nil {
		t.Errorf("absolute parent hint: %v", err)
	} else {
		d.Close()
	}

	// A parent hint at /etc/passwd (not a VMDK) is refused, and names the option.
	os.WriteFile(filepath.Join(cloneDir, "passwd-flat.bin"), make([]byte, 4096), 0o644)
	pw := filepath.Join(cloneDir, "passwd.vmdk")
	os.WriteFile(pw, []byte(flatDesc("passwd-flat.bin", 8, 2, 1, "/etc/passwd")), 0o644)
	if d, err := Open(pw, Options{IgnoreCIDMismatch: true}); err == nil {
		d.Close()
		t.Error("a parent hint at /etc/passwd opened")
	} else if !errors.Is(err, ErrDiskOpenParent) || !strings.Contains(err.Error(), "is not a VMDK") {
		t.Errorf("/etc/passwd parent: %v", err)
	}

	// Point 3 of issue 14: a redo log kept in R, on a base in B whose extent is "../R/secret.bin". The
	// base's extents are confined to B: R (the child's folder) does not widen what the base may read.
	b, r := filepath.Join(top, "B"), filepath.Join(top, "R")
	os.Mkdir(b, 0o755)
	os.Mkdir(r, 0o755)
	os.WriteFile(filepath.Join(r, "secret.bin"), bytes.Repeat([]byte("S"), 4096), 0o644)
	os.WriteFile(filepath.Join(b, "base.vmdk"), []byte(flatDesc("../R/secret.bin", 8, 7, CIDNone, "")), 0o644)
	os.WriteFile(filepath.Join(r, "r-flat.bin"), make([]byte, 4096), 0o644)
	redo := filepath.Join(r, "r.vmdk")
	os.WriteFile(redo, []byte(flatDesc("r-flat.bin", 8, 8, 7, "../B/base.vmdk")), 0o644)
	if d, err := Open(redo, Options{}); err == nil {
		d.Close()
		t.Error("the base read an extent in its redo log's folder")
	} else if !strings.Contains(err.Error(), "leaves the disk's folder") {
		t.Errorf("base extent in the redo's folder: %v", err)
	}
	// vmdk child never makes what Open refuses: no child of that base is created.
	c2 := filepath.Join(r, "c2.vmdk")
	if err := CreateChild(filepath.Join(b, "base.vmdk"), c2, ""); err == nil {
		t.Error("CreateChild made a child of a base that does not open")
	}
	if _, err := os.Lstat(c2); err == nil {
		t.Error("a refused child was left behind")
	}
}

// Rename and Unlink of a descriptor whose extent is "disk/../../victim.txt" (with a decoy of that name
// inside the folder) never move or delete the file outside.
func TestAdminStaysInFolder(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "vm")
	os.Mkdir(dir, 0o755)
	victim := filepath.Join(top, "victim.txt")
	os.WriteFile(victim, bytes.Repeat([]byte("V"), 4096), 0o644)
	os.WriteFile(filepath.Join(dir, "victim.txt"), make([]byte, 4096), 0o644)
	disk := filepath.Join(dir, "disk.vmdk")
	os.WriteFile(disk, []byte(flatDesc("disk/../../victim.txt", 8, 1, CIDNone, "")), 0o644)
	check := func(step string) {
		t.Helper()
		if b, err := os.ReadFile(victim); err != nil || !bytes.Equal(b, bytes.Repeat([]byte("V"), 4096)) {
			t.Fatalf("after %s the outside file is gone or changed: %v", step, err)
		}
	}
	if d, err := Open(disk, Options{}); err == nil {
		p := make([]byte, 8)
		d.ReadAt(p, 0)
		d.Close()
		if string(p) == "VVVVVVVV" {
			t.Fatal("the outside file was read")
		}
	}
	renamed := filepath.Join(dir, "disk2.vmdk")
	if err := Rename(disk, renamed); err != nil {
		t.Logf("rename: %v", err)
		renamed = disk
	}
	check("rename")
	if err := Grow(renamed, 1<<20, nil); err != nil {
		t.Logf("grow: %v", err)
	}
	check("grow")
	if err := Unlink(renamed); err != nil {
		t.Logf("unlink: %v", err)
	}
	check("unlink")
	if _, err := os.Stat(renamed); err == nil {
		t.Error("the descriptor was not removed")
	}
	// Without a decoy the open itself is refused, and so are rename and unlink.
	os.WriteFile(disk, []byte(flatDesc("disk/../../victim.txt", 8, 1, CIDNone, "")), 0o644)
	os.Remove(filepath.Join(dir, "victim.txt"))
	if err := Rename(disk, filepath.Join(dir, "disk3.vmdk")); err == nil || !strings.Contains(err.Error(), "leaves") {
		t.Errorf("rename without decoy: %v", err)
	}
	if err := Unlink(disk); err == nil {
		t.Error("unlink without decoy succeeded")
	}
	check("refused rename and unlink")
}
