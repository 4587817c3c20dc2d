package vddk

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Images made by qemu-img in each format it writes that vmdkmount does not read are named; the ones it
// reads (qcow2, VHD, VHDX, VDI) and a raw image are not refused.
func TestRefuseUnread(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	for _, c := range []struct{ fmt, opts, want string }{
		{"qcow2", "", ""}, {"qcow", "", "a qcow (version 1) image"}, {"qed", "", "a QED image"},
		{"vpc", "", ""}, {"vpc", "subformat=fixed", ""}, {"vhdx", "", ""},
		{"vdi", "", ""}, {"parallels", "", "a Parallels image"}, {"raw", "", ""},
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
		case c.want != "" && (err == nil || err.Error() != p+": "+c.want+", which vmdkmount does not read"):
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

// The sniffer reads fixed offsets of whatever it is given (and the last sector of the file): no input
// may make it panic, and what it names is a format Open reads or a refusal.
func FuzzForeignKind(f *testing.F) {
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"))
	f.Add([]byte("QFI\xfb\x00\x00\x00\x01"))
	f.Add([]byte("conectix"))
	f.Add(append(make([]byte, 0x40), 0x7f, 0x10, 0xda, 0xbe))
	f.Add([]byte("QFI"))
	f.Fuzz(func(t *testing.T, b []byte) {
		head := b[:min(len(b), 4096)]
		switch kind, err := foreignKind(bytes.NewReader(b), head, int64(len(b))); kind {
		case "", FormatQcow2, FormatVHD, FormatVHDX, FormatVDI:
			if kind != "" && err != nil {
				t.Errorf("%q and an error: %v", kind, err)
			}
		default:
			t.Errorf("unknown kind %q", kind)
		}
	})
}
