package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMakeFS(t *testing.T) {
	needQemu(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"make-fs", "src"}, "vmdk: make-fs needs SRC and OUT\nusage: vmdk make-fs [options] SRC OUT\n"},
		{[]string{"make-fs", "src", "out.vmdk"}, "vmdk: make-fs needs --fs (fat32, iso9660, squashfs)\nusage: vmdk make-fs [options] SRC OUT\n"},
		{[]string{"make-fs", "--fs", "fat32", "--size", "+lots", "src", "out.vmdk"}, "vmdk: size \"lots\" is not a number with an optional K, M, G or T suffix\nusage: vmdk make-fs [options] SRC OUT\n"},
	} {
		out, errOut, code := runBin(t, c.args...)
		if code != 2 || errOut != c.want || out != "" {
			t.Errorf("vmdk %q: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "user-data"), []byte("#cloud-config\n"), 0o644)
	os.Symlink("sub/user-data", filepath.Join(src, "link"))
	out := filepath.Join(dir, "d.vmdk")
	// Flags after the arguments too, as every vmdk command takes them.
	_, errOut, code := runBin(t, "make-fs", src, out, "--fs", "fat32")
	if code == 0 || !strings.Contains(errOut, "link: FAT32 has no symbolic links") {
		t.Fatalf("a symlink on FAT32: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a failed make-fs left its output")
	}
	_, errOut, code = runBin(t, "make-fs", "--fs", "fat32", "--skip-unsupported", "--partition", "gpt", "-t", "streamOptimized", "--size", "+8M", "-p", src, out)
	if code != 0 || !strings.Contains(errOut, "left out link: FAT32 has no symbolic links") || !strings.Contains(errOut, "(100.00/100%)") {
		t.Fatalf("make-fs: exit %d, %q", code, errOut)
	}
	if b, err := exec.Command("qemu-img", "check", out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v %s", err, b)
	}
	raw := filepath.Join(dir, "d.raw")
	if b, err := exec.Command("qemu-img", "convert", "-O", "raw", out, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v %s", err, b)
	}
	if _, err := exec.LookPath("mtype"); err == nil {
		b, err := exec.Command("mtype", "-i", raw+"@@1M", "::/sub/user-data").CombinedOutput()
		if err != nil || string(b) != "#cloud-config\n" {
			t.Fatalf("mtype: %v %q", err, b)
		}
	}
}
