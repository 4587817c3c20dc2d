package ext4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"golang.org/x/sys/unix"
)

// sourceTree makes a host directory for mke2fs -d to copy.
func sourceTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a", "b", "c"), 0o750))
	must(os.WriteFile(filepath.Join(src, "a", "small"), []byte("small"), 0o644))
	big := make([]byte, 300000)
	for i := range big {
		big[i] = byte(i / 4093)
	}
	must(os.WriteFile(filepath.Join(src, "a", "b", "big"), big, 0o600))
	f, err := os.Create(filepath.Join(src, "sparse"))
	must(err)
	_, err = f.WriteAt([]byte("tail"), 1<<20)
	must(err)
	must(f.Close())
	must(os.Link(filepath.Join(src, "a", "small"), filepath.Join(src, "hard")))
	must(os.Symlink("a/small", filepath.Join(src, "fast")))
	must(os.Symlink(string(bytes.Repeat([]byte("long/"), 30)), filepath.Join(src, "slow")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(unix.Setxattr(filepath.Join(src, "a", "small"), "user.note", []byte("kept"), 0))
	return src
}

// TestMkfsCopiesMatch covers block sizes the kernel here cannot mount (64 KiB): mke2fs -d copies a
// host tree into the image, and our view of the image must equal that tree. Inode numbers, times
// mke2fs sets itself and sizes of directories are the tool's own and are not compared.
func TestMkfsCopiesMatch(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	src := sourceTree(t)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"ext4-64k", []string{"-t", "ext4", "-b", "65536", "-O", "^has_journal"}},
		{"ext4-2k-inline", []string{"-t", "ext4", "-b", "2048", "-O", "inline_data,^has_journal"}},
		{"ext2-4k", []string{"-t", "ext2", "-b", "4096"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			args := append(append([]string{"-q", "-F", "-d", src}, c.args...), img, "32M")
			if out, err := exec.Command("mke2fs", args...).CombinedOutput(); err != nil {
				t.Fatalf("mke2fs: %v: %s", err, out)
			}
			v := openImage(t, img)
			if c.name == "ext4-64k" && v.sb.blockSize != 65536 {
				t.Fatalf("block size %d", v.sb.blockSize)
			}
			opt := treecmp.Options{
				Ignore:     treecmp.DirSize | treecmp.Blocks | treecmp.Ctime | treecmp.Btime | treecmp.Atime | treecmp.Nlink,
				IgnorePath: func(p string) bool { return p == "lost+found" },
				// mke2fs -d copies whole seconds only.
				TimeGranularity: time.Second,
			}
			// The root's own metadata is mke2fs's, not the source's.
			for _, d := range treecmp.Compare(v, src, opt) {
				if d.Path != "." {
					t.Error(d)
				}
			}
		})
	}
}
