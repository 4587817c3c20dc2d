package squashfs

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestXzBranchFilter builds an xz image with mksquashfs -Xbcj x86 from x86 machine code (this test
// binary), checks that some blocks really carry the filter, and compares with the kernel mount.
func TestXzBranchFilter(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs not installed")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer code.Close()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(src, "program"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(out, code, 1<<20); err != nil {
		t.Fatal(err)
	}
	out.Close()
	img := filepath.Join(tmp, "bcj.sqfs")
	if b, err := exec.Command("mksquashfs", src, img, "-comp", "xz", "-Xbcj", "x86", "-noappend", "-quiet",
		"-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	filtered := 0
	magic := []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	for i := bytes.Index(data, magic); i >= 0 && i+14 <= len(data); {
		if data[i+12] != 0 && data[i+13]&3 != 0 {
			filtered++
		}
		next := bytes.Index(data[i+1:], magic)
		if next < 0 {
			break
		}
		i += 1 + next
	}
	if filtered == 0 {
		t.Fatal("mksquashfs wrote no block with a branch filter; the test proves nothing")
	}
	ours, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountImage(t, data)
	for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true,
		Ignore: treecmp.Atime | treecmp.Ctime | treecmp.Btime}) {
		t.Error(d)
	}
	t.Logf("%d of the image's xz blocks use the x86 filter", filtered)
}
