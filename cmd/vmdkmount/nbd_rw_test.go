package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vmdkmount --rw of an NBD export: raw/disk takes writes, read back through the mount and judged by
// qemu-img over the redo log left with --redo; the export's file is not touched. list --mounts names the
// mount's source by its URI, without the user name.
func TestMountNBDWritable(t *testing.T) {
	bin := buildBinary(t)
	for _, tool := range []string{"qemu-nbd", "qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "raw", raw, "8M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 2M", raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v %s", err, out)
	}
	before, _ := os.ReadFile(raw)
	sock := filepath.Join(dir, "nbd.sock")
	startQemuNBD(t, sock, "raw", raw)
	uri := "nbd+unix:///?socket=" + sock
	patch := bytes.Repeat([]byte("written over nbd "), 4096)
	for _, keep := range []bool{false, true} {
		sub := filepath.Join(dir, map[bool]string{false: "a", true: "b"}[keep])
		os.Mkdir(sub, 0o755)
		mnt := mountPoint(t, bin, sub)
		redo := filepath.Join(dir, "redo.vmdk")
		args := []string{"--rw", "nbd+unix://someuser@/?socket=" + sock, mnt}
		if keep {
			args = []string{"--rw", "--redo", redo, "--keep-redo", uri, mnt}
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("vmdkmount %q: %v\n%s", args, err, out)
		}
		if !keep {
			out, err := exec.Command(bin, "list", "--mounts").CombinedOutput()
			if err != nil || !strings.Contains(string(out), uri) || strings.Contains(string(out), "someuser") {
				t.Errorf("list --mounts does not show %s: %v\n%s", uri, err, out)
			}
		}
		disk := filepath.Join(mnt, "raw", "disk")
		f, err := os.OpenFile(disk, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(patch, 2<<20+100); err != nil {
			t.Fatalf("write into raw/disk: %v", err)
		}
		got := make([]byte, len(patch)+200)
		if _, err := f.ReadAt(got, 2<<20); err != nil {
			t.Fatal(err)
		}
		f.Close()
		want := append(append(bytes.Repeat([]byte{0x5a}, 100), patch...), bytes.Repeat([]byte{0x5a}, 100)...)
		if !bytes.Equal(got, want) {
			t.Error("raw/disk does not read back what was written over the export's data")
		}
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v %s", err, out)
		}
		if after, _ := os.ReadFile(raw); sha256.Sum256(after) != sha256.Sum256(before) {
			t.Fatal("the exported file changed")
		}
		if keep {
			// The kept redo log, judged by qemu: qemu reads a VMDK's parent only when it is a VMDK, so the
			// redo log is read alone (no backing) and its allocated ranges (qemu-img map) laid over the
			// exported file must give the file with the write.
			spec := `json:{"driver":"vmdk","file":{"driver":"file","filename":"` + redo + `"},"backing":null}`
			alone := filepath.Join(dir, "alone.raw")
			if out, err := exec.Command("qemu-img", "convert", "-O", "raw", spec, alone).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img convert of the kept redo log: %v\n%s", err, out)
			}
			out, err := exec.Command("qemu-img", "map", "--output=json", spec).Output()
			var m []struct {
				Start, Length int64
				Data          bool
			}
			if err != nil || json.Unmarshal(out, &m) != nil {
				t.Fatalf("qemu-img map of the kept redo log: %v\n%s", err, out)
			}
			a, _ := os.ReadFile(alone)
			merged := append([]byte(nil), before...)
			for _, e := range m {
				if e.Data {
					copy(merged[e.Start:e.Start+e.Length], a[e.Start:])
				}
			}
			want := append([]byte(nil), before...)
			copy(want[2<<20+100:], patch)
			if !bytes.Equal(merged, want) {
				t.Error("the kept redo log laid over the export differs from the file with the write")
			}
			if info, _ := exec.Command("qemu-img", "info", redo).Output(); !strings.Contains(string(info), "backing file: "+uri) {
				t.Error("the kept redo log does not name the export's URI as its parent")
			}
		}
	}
}
