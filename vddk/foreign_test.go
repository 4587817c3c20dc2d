package vddk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Images made by qemu-img in each format it writes are named; a raw image, a VMDK's own bytes read as
// raw, and a file of zeros are not refused.
func TestRefuseUnread(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	for _, c := range []struct{ fmt, opts, want string }{
		{"qcow2", "", "a qcow2 image"}, {"qcow", "", "a qcow image"}, {"qed", "", "a QED image"},
		{"vpc", "", "a VHD image"}, {"vpc", "subformat=fixed", "a VHD image"}, {"vhdx", "", "a VHDX image"},
		{"vdi", "", "a VDI image"}, {"parallels", "", "a Parallels image"}, {"raw", "", ""},
	} {
		p := filepath.Join(dir, c.fmt+strings.ReplaceAll(c.opts, "=", "-"))
		args := []string{"create", "-q", "-f", c.fmt}
		if c.opts != "" {
			args = append(args, "-o", c.opts)
		}
		if out, err := exec.Command("qemu-img", append(args, p, "4M")...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v %s", args, err, out)
		}
		err := RefuseUnread(p)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s refused: %v", c.fmt, err)
		case c.want != "" && (err == nil || err.Error() != p+": "+c.want+", which vmdkmount does not read yet"):
			t.Errorf("%s %s: %v", c.fmt, c.opts, err)
		}
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if err := RefuseUnread(empty); err == nil || err.Error() != empty+": an empty file, not a disk image" {
		t.Errorf("empty: %v", err)
	}
	if err := RefuseUnread(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

// The sniffer reads fixed offsets of whatever it is given: no input may make it panic.
func FuzzForeignFormat(f *testing.F) {
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"), []byte{})
	f.Add([]byte("conectix"), []byte("conectix"))
	f.Add(make([]byte, 0x44), []byte("vhdxfile"))
	f.Add([]byte("QFI"), []byte("con"))
	f.Fuzz(func(t *testing.T, head, tail []byte) {
		switch name := foreignFormat(head, tail); name {
		case "", "qcow", "qcow2", "QED", "VHDX", "VHD", "VDI", "Parallels":
		default:
			t.Errorf("unknown name %q", name)
		}
	})
}
