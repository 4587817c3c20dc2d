package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
)

// linuxVMDK is inspecttest's GPT Linux disk (/boot, /, /home, /srv) converted to a VMDK by qemu-img.
func linuxVMDK(t *testing.T) string {
	dir := t.TempDir()
	raw := inspecttest.LinuxDisk(t, dir)
	inspecttest.NeedTools(t, "qemu-img")
	vmdk := filepath.Join(dir, "linux.vmdk")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, vmdk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	return vmdk
}

func TestInspectCommand(t *testing.T) {
	vmdk := linuxVMDK(t)
	out, _, err := run(t, "inspect", "--json", vmdk)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OS []map[string]any `json:"os"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(got.OS) != 1 {
		t.Fatalf("%d OSes: %s", len(got.OS), out)
	}
	o := got.OS[0]
	for k, want := range map[string]any{"root": "p2", "type": "linux", "distro": "debian", "major_version": 12.0,
		"minor_version": 5.0, "hostname": "debby", "product_name": "Debian GNU/Linux 12 (bookworm)"} {
		if o[k] != want {
			t.Errorf("%s = %v, want %v", k, o[k], want)
		}
	}
	wantMounts := map[string]any{"/": "p2", "/boot": "p1", "/home": "p3", "/srv": "p4"}
	if !reflect.DeepEqual(o["mountpoints"], wantMounts) {
		t.Errorf("mountpoints %v", o["mountpoints"])
	}
	text, _, err := run(t, "inspect", vmdk)
	if err != nil || !strings.Contains(text, "Debian GNU/Linux 12 (bookworm)") || !strings.Contains(text, "/srv p4") {
		t.Errorf("text form: %v\n%s", err, text)
	}
	// list --json gives each volume its mount points.
	for _, v := range listJSON(t, vmdk) {
		var want []string
		for mp, id := range wantMounts {
			if id == v.ID {
				want = append(want, mp)
			}
		}
		if !reflect.DeepEqual(v.Mountpoints, want) {
			t.Errorf("list: %s mountpoints %q, want %q", v.ID, v.Mountpoints, want)
		}
	}
}

// TestMountInspector mounts with -i: the Linux guest's root with /boot, /home and /srv in place and
// raw/ beside; then a set of a Windows and a Linux disk, where -i takes the first OS and says so,
// and --root picks the other.
func TestMountInspector(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	vmdk := linuxVMDK(t)
	mnt := mountPoint(t, bin, dir)
	if out, err := exec.Command(bin, "-i", vmdk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"etc/hostname": "debby\n", "boot/vmlinuz-6.1.0": "kernel",
		"boot/grub/grub.cfg": "menuentry", "home/alice/notes.txt": "hello", "srv/www/index.html": "<html>"} {
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	raw, err := os.ReadDir(filepath.Join(mnt, "raw"))
	if err != nil || len(raw) != 6 { // disk, p1 … p5
		t.Errorf("raw/: %v %v", raw, err)
	}
	if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}

	win, _, _ := inspecttest.WindowsGPT(t, filepath.Join(dir))
	out, err := exec.Command(bin, "-i", win, vmdk, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount -i: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "2 operating systems found (d0p3 (windows), d1p2 (linux)); showing d0p3") {
		t.Errorf("message: %q", out)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "D", "shared", "report.txt")); err != nil || string(got) != "quarterly" {
		t.Errorf("D/shared/report.txt: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "C", "Users", "alice", "evil.exe")); err != nil {
		t.Error(err)
	}
	exec.Command(bin, "umount", mnt).Run()
	if out, err := exec.Command(bin, "-i", "--root", "d1p2", win, vmdk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -i --root: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "home", "alice", "notes.txt")); err != nil || string(got) != "hello" {
		t.Errorf("--root d1p2: home/alice/notes.txt: %q %v", got, err)
	}
	exec.Command(bin, "umount", mnt).Run()
	if out, err := exec.Command(bin, "-i", "--root", "d0p1", win, vmdk, mnt).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "no operating system there") {
		t.Errorf("--root d0p1: %v %s", err, out)
	}
}
