package ext4

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An inode whose i_size is past what its mapping can address is refused as damage (the kernel's iget:
// "bad i_size value", EUCLEAN), one byte less is served, and its neighbours are untouched. The sizes
// are set by debugfs on images made by mke2fs, for extent-mapped files and for block-mapped ones
// (with and without huge_file), and every case is compared with the kernel's loop mount.
func TestBadInodeSizeRefused(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	for _, layout := range []struct {
		name    string
		mkfs    []string
		extents bool
	}{
		{"extents-4k", []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum,^has_journal"}, true},
		{"blockmap-4k-huge", []string{"-t", "ext3", "-b", "4096", "-O", "huge_file,^has_journal"}, false},
		{"blockmap-1k", []string{"-t", "ext2", "-b", "1024", "-O", "^huge_file"}, false},
	} {
		t.Run(layout.name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src")
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "big"), []byte("hello"), 0o644)
			os.WriteFile(filepath.Join(src, "neighbour"), []byte("still here"), 0o644)
			base := filepath.Join(tmp, "base.img")
			args := append([]string{"-q", "-F"}, layout.mkfs...)
			if out, err := exec.Command("mke2fs", append(args, "-d", src, base, "8M")...).CombinedOutput(); err != nil {
				t.Fatalf("mke2fs: %v: %s", err, out)
			}
			v := openImage(t, base)
			if in := in0(t, v, "big"); (in.flags&flagExtents != 0) != layout.extents {
				t.Fatalf("big has flags %#x", in.flags)
			}
			max := v.sb.maxFileSize(layout.extents)
			t.Logf("max file size %d", max)
			for _, size := range []uint64{max, max + 1, 1 << 60, 1<<64 - 1} {
				img := filepath.Join(tmp, fmt.Sprintf("%d.img", size))
				b, _ := os.ReadFile(base)
				os.WriteFile(img, b, 0o644)
				if out, err := exec.Command("debugfs", "-w", "-R", fmt.Sprintf("sif big size %d", size), img).CombinedOutput(); err != nil {
					t.Fatalf("debugfs: %v: %s", err, out)
				}
				ours := openImage(t, img)
				fi, err := ours.Stat("big")
				refused := size > max
				switch {
				case refused && !errors.Is(err, errCorrupt):
					t.Errorf("size %d: %v, want a damage error", size, err)
				case refused && !strings.Contains(err.Error(), "bad i_size"):
					t.Errorf("size %d: %v does not say bad i_size", size, err)
				case !refused && (err != nil || uint64(fi.Size()) != size):
					t.Errorf("size %d: %v", size, err)
				}
				if !refused {
					// The file's bytes past its blocks are a hole: reading the end is quick and zero.
					f, err := ours.Open("big")
					if err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, 4096)
					start := time.Now()
					n, err := f.(io.ReaderAt).ReadAt(buf, int64(size)-4096)
					if n != 4096 || (err != nil && err != io.EOF) || time.Since(start) > 5*time.Second {
						t.Errorf("size %d: reading the last page: %d, %v", size, n, err)
					}
					f.Close()
				}
				if got, err := readFile(ours, "neighbour"); err != nil || got != "still here" {
					t.Errorf("size %d: neighbour %q, %v", size, got, err)
				}
				kernelStat(t, img, size, refused)
			}
		})
	}
}

func readFile(v *FS, name string) (string, error) {
	f, err := v.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// kernelStat checks the kernel's view of big on a loop mount of img: EUCLEAN when refused, else size.
func kernelStat(t *testing.T, img string, size uint64, refused bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	mnt := mountRO(t, img)
	fi, err := os.Stat(filepath.Join(mnt, "big"))
	switch {
	case refused && !errors.Is(err, syscall.EUCLEAN):
		t.Errorf("size %d: the kernel gives %v, we refuse it", size, err)
	case !refused && (err != nil || uint64(fi.Size()) != size):
		t.Errorf("size %d: the kernel gives %v, we serve it", size, err)
	}
}
