package ext4

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestFeatureMatrixMatchesKernel makes one small filesystem per mke2fs feature combination the
// committed fixtures do not cover, lets the kernel copy a tree into it, and compares our reading of
// the image with the kernel's read-only mount.
func TestFeatureMatrixMatchesKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("filling images through a loop mount needs root")
	}
	t.Parallel()
	src := sourceTree(t)
	for name, args := range map[string][]string{
		"no-dir-index":     {"-t", "ext4", "-O", "^dir_index,^has_journal"},
		"ext4-blockmaps":   {"-t", "ext4", "-O", "^extent,^64bit,^has_journal"},
		"uninit-bg":        {"-t", "ext4", "-O", "^metadata_csum,uninit_bg,^has_journal"},
		"no-flex-bg":       {"-t", "ext4", "-b", "2048", "-O", "^flex_bg,^has_journal"},
		"no-sparse-super":  {"-t", "ext4", "-b", "1024", "-O", "^sparse_super,^resize_inode,^has_journal"},
		"1k-inodes":        {"-t", "ext4", "-I", "1024", "-O", "^has_journal"},
		"inline-1k":        {"-t", "ext4", "-b", "1024", "-O", "inline_data,^has_journal"},
		"large-dir":        {"-t", "ext4", "-O", "large_dir,^has_journal"},
		"journal-ext4":     {"-t", "ext4", "-J", "size=1"},
		"packed-meta":      {"-t", "ext4", "-O", "^has_journal,^resize_inode", "-E", "packed_meta_blocks=1"},
		"ext3-1k-journal":  {"-t", "ext3", "-b", "1024"},
		"ext2-no-filetype": {"-t", "ext2", "-O", "^filetype"},
		"encrypt-feature":  {"-t", "ext4", "-O", "encrypt,^has_journal"},
		"bigalloc-64k":     {"-t", "ext4", "-b", "1024", "-C", "65536", "-O", "bigalloc,^has_journal"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "img")
			size := "8M"
			if name == "bigalloc-64k" {
				size = "64M" // every file takes a whole 64 KiB cluster
			}
			mkfs := append(append([]string{"-q", "-F"}, args...), img, size)
			if out, err := exec.Command("mke2fs", mkfs...).CombinedOutput(); err != nil {
				t.Skipf("mke2fs %v: %v: %s", args, err, out) // a feature this e2fsprogs lacks
			}
			rw := filepath.Join(dir, "rw")
			if err := os.Mkdir(rw, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-o", "loop", img, rw).CombinedOutput(); err != nil {
				t.Skipf("the kernel cannot mount %v: %v: %s", args, err, out)
			}
			cp := exec.Command("cp", "-a", src+"/.", rw)
			out, err := cp.CombinedOutput()
			if err == nil {
				// A directory big enough to be indexed where the features allow it.
				var names strings.Builder
				for i := range 300 {
					names.WriteString("entry-" + strings.Repeat("x", i%50) + "-" + string(rune('a'+i%26)) + "-" + strconv.Itoa(i) + "\x00")
				}
				if err = os.Mkdir(filepath.Join(rw, "many"), 0o755); err == nil {
					touch := exec.Command("xargs", "-0", "touch")
					touch.Dir = filepath.Join(rw, "many")
					touch.Stdin = strings.NewReader(names.String())
					out, err = touch.CombinedOutput()
				}
			}
			if uerr := exec.Command("umount", rw).Run(); uerr != nil {
				t.Fatalf("umount: %v", uerr)
			}
			if err != nil {
				t.Fatalf("filling: %v: %s", err, out)
			}
			ours := openImage(t, img)
			mnt := mountRO(t, img)
			for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true}) {
				t.Error(d)
			}
		})
	}
}
