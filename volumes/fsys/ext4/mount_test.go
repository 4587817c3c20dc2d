package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// TestFixturesMatchKernel compares every committed image, entry by entry, with the kernel's read-only
// loop mount of the same bytes: metadata, inode numbers, xattrs, link targets and content.
func TestFixturesMatchKernel(t *testing.T) {
	t.Parallel()
	for _, gz := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(gz), ".img.gz")
		t.Run(name, func(t *testing.T) {
			img := gunzipTemp(t, gz)
			ours := openImage(t, img)
			mnt := mountRO(t, img)
			diffs := treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true})
			for _, d := range diffs {
				t.Error(d)
			}
			if t.Failed() {
				return
			}
			checkOpenInode(t, ours, mnt)
			// The kernel view has the kinds of entries the fixture script made, so the comparison was not vacuous.
			seen := map[fs.FileMode]int{}
			n := 0
			err := fs.WalkDir(ours, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				seen[d.Type()]++
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantMin := 430 // the 400-entry directory and the rest
			if name == "ext2-rev0" {
				wantMin = 30
			}
			if n < wantMin || seen[fs.ModeSymlink] < 4 || seen[fs.ModeDir] < 9 || seen[fs.ModeNamedPipe] != 1 ||
				seen[fs.ModeSocket] != 1 || seen[fs.ModeDevice] != 1 || seen[fs.ModeDevice|fs.ModeCharDevice] != 2 {
				t.Errorf("walk saw %d entries, types %v", n, seen)
			}
		})
	}
}

// TestCorpusMatchesKernel runs the same comparison on the acceptance corpus images, including the two
// ext partitions inside dfvfs/mbr.raw.
func TestCorpusMatchesKernel(t *testing.T) {
	t.Parallel()
	corpus := filepath.Join(filepath.Dir(testfix.RepoRoot(t)), "shared", "acceptance", "corpus")
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("acceptance corpus absent: %v", err)
	}
	for _, c := range []struct {
		rel       string
		off, size int64 // a partition's byte range; size 0 means the whole file
	}{
		{"dfvfs/ext2.raw", 0, 0},
		{"go-ext4/hierarchy_32.ext4", 0, 0},
		{"go-ext4/hierarchy_64.ext4", 0, 0},
		{"go-ext4/tiny.ext4", 0, 0},
		{"dfvfs/mbr.raw", 1 * 512, 129 * 512},
		{"dfvfs/mbr.raw", 131 * 512, 129 * 512},
	} {
		t.Run(fmt.Sprintf("%s@%d", c.rel, c.off), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(corpus, c.rel))
			if err != nil {
				t.Fatal(err)
			}
			if c.size > 0 {
				src = src[c.off : c.off+c.size]
			}
			img := filepath.Join(t.TempDir(), "vol.img")
			if err := os.WriteFile(img, src, 0o600); err != nil {
				t.Fatal(err)
			}
			ours := openImage(t, img)
			mnt := mountRO(t, img)
			for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true}) {
				t.Error(d)
			}
		})
	}
}

// TestZeroExtraIsizeMatchesKernel clears i_extra_isize on inodes that have extended times, a birth
// time and in-inode xattrs: the kernel then still reads the 160-byte inode's time fields but no
// in-inode xattrs, and so must we. (The image has no metadata_csum, so the kernel accepts the edit.)
func TestZeroExtraIsizeMatchesKernel(t *testing.T) {
	t.Parallel()
	b := fixtureBytes(t, "ext4-1k-32bit")
	v := openBytes(t, b)
	var edited int
	for _, p := range []string{"setuid", "setgid", "dir/small.txt", "empty"} {
		in := in0(t, v, p)
		if len(in.extra) < 4 {
			t.Fatalf("%s has no extra inode space", p)
		}
		binary.LittleEndian.PutUint16(b[inodeOffset(v, in.ino)+128:], 0)
		edited++
	}
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ours := openImage(t, img)
	if x, err := ours.ListXattr("dir/small.txt"); err != nil || len(x) != 0 {
		t.Errorf("in-inode xattrs still listed with i_extra_isize 0: %q, %v", x, err)
	}
	mnt := mountRO(t, img)
	for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true}) {
		t.Error(d)
	}
}

// TestSparseSuper2MetaBGMatchesKernel: with sparse_super2 the last group holds a superblock backup;
// when that group starts a meta group, its descriptor block comes one block later. The kernel fills
// the image so that inodes live in that group, then both views are compared.
func TestSparseSuper2MetaBGMatchesKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("filling an image through a loop mount needs root")
	}
	t.Parallel()
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 4353*1024); err != nil { // 17 groups of 256 blocks
		t.Fatal(err)
	}
	if out, err := exec.Command("mke2fs", "-q", "-F", "-b", "1024", "-t", "ext4", "-g", "256", "-N", "512",
		"-O", "meta_bg,64bit,sparse_super2,^resize_inode,^has_journal", img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	rw := filepath.Join(dir, "rw")
	if err := os.Mkdir(rw, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, rw).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	var names strings.Builder
	for i := range 520 {
		fmt.Fprintf(&names, "f%03d\x00", i)
	}
	touch := exec.Command("xargs", "-0", "touch")
	touch.Dir = rw
	touch.Stdin = strings.NewReader(names.String())
	out, err := touch.CombinedOutput()
	if uerr := exec.Command("umount", rw).Run(); uerr != nil {
		t.Fatalf("umount: %v", uerr)
	}
	if err != nil {
		t.Fatalf("touch: %v: %s", err, out)
	}
	ours := openImage(t, img)
	sb := ours.sb
	last := sb.groupCount - 1
	if sb.compat&compatSparseSuper2 == 0 || sb.backupGroups[1] != last || last%sb.descPerBlock != 0 {
		t.Fatalf("layout not as intended: %d groups, backups %v, %d descriptors per block", sb.groupCount, sb.backupGroups, sb.descPerBlock)
	}
	inLast := 0
	for _, e := range mustDir(t, ours, ".").entries {
		if (e.ino-1)/sb.inodesPerGroup == last {
			inLast++
		}
	}
	if inLast == 0 {
		t.Fatal("no inode lives in the last group")
	}
	mnt := mountRO(t, img)
	for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true}) {
		t.Error(d)
	}
}
