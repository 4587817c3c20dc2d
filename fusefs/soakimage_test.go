package fusefs_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// soakImage is a generated MBR disk with an ext4 partition (p1) and a squashfs partition (p2), what
// the kernel reads in each, and where one block of one ext4 file lies on the disk.
type soakImage struct {
	raw  string              // the disk image
	sums map[string][32]byte // "p1/path" → SHA-256 of the file, read through the kernel's loop mount
	// target is an ext4 file and targetOff the disk offset of one of its 4 KiB blocks (debugfs bmap).
	target    string
	targetOff int64
}

const (
	soakBlock = 4096
	p1Start   = 1 << 20
	p1Size    = 40 << 20
)

// makeSoakImage writes files of many sizes (random and compressible), builds the two filesystems
// from them with mkfs.ext4 -d and mksquashfs, and puts them in partitions made by sfdisk.
// With big, the files fill more of each filesystem (-long).
func makeSoakImage(t *testing.T, dir string, big bool) soakImage {
	t.Helper()
	needTools(t, "mkfs.ext4", "mksquashfs", "sfdisk", "debugfs")
	r := rand.New(rand.NewPCG(42, 42))
	src := []string{filepath.Join(dir, "src1"), filepath.Join(dir, "src2")}
	budget := []int64{12 << 20, 5 << 20}
	if big {
		budget = []int64{30 << 20, 12 << 20}
	}
	for i, root := range src {
		var total int64
		for k := 0; total < budget[i]; k++ {
			p := filepath.Join(root, fmt.Sprintf("d%d", k%7), fmt.Sprintf("s%d", k%3), fmt.Sprintf("f%03d", k))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			var n int
			switch x := r.IntN(100); {
			case x < 30:
				n = r.IntN(soakBlock)
			case x < 70:
				n = soakBlock + r.IntN(124<<10)
			case x < 95:
				n = 128<<10 + r.IntN(896<<10)
			default:
				n = 1<<20 + r.IntN(2<<20)
			}
			if err := os.WriteFile(p, fileBytes(r, n), 0o644); err != nil {
				t.Fatal(err)
			}
			total += int64(n)
			if k%40 == 0 {
				os.Symlink(filepath.Base(p), p+".link")
				os.Link(p, p+".hard")
			}
		}
	}
	img := soakImage{target: "d0/target.bin", sums: map[string][32]byte{}}
	if err := os.WriteFile(filepath.Join(src[0], img.target), fileBytes(r, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	p1 := filepath.Join(dir, "p1.img")
	run(t, "mkfs.ext4", "-q", "-F", "-b", strconv.Itoa(soakBlock), "-d", src[0], p1, strconv.Itoa(p1Size/soakBlock)) // a count of blocks
	p2 := filepath.Join(dir, "p2.img")
	run(t, "mksquashfs", src[1], p2, "-noappend", "-quiet", "-no-progress")
	out, err := exec.Command("debugfs", "-R", "bmap /"+img.target+" 3", p1).Output()
	if err != nil {
		t.Fatalf("debugfs bmap: %v", err)
	}
	blk, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || blk <= 0 {
		t.Fatalf("debugfs bmap said %q", out)
	}
	img.targetOff = p1Start + blk*soakBlock
	if st, err := os.Stat(p1); err != nil || st.Size() != p1Size {
		t.Fatalf("the ext4 image is not the partition's size: %v", err)
	}
	b2, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	p2Start := int64(p1Start + p1Size)
	p2Size := (int64(len(b2)) + 1<<20 - 1) &^ (1<<20 - 1)
	img.raw = filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(img.raw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img.raw, p2Start+p2Size+1<<20)
	sf := exec.Command("sfdisk", "-q", img.raw)
	sf.Stdin = strings.NewReader(fmt.Sprintf("label: dos\nstart=%d, size=%d, type=83\nstart=%d, size=%d, type=83\n",
		p1Start/512, p1Size/512, p2Start/512, p2Size/512))
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(img.raw, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := f.WriteAt(b1, p1Start)
	_, err2 := f.WriteAt(b2, p2Start)
	if err := f.Close(); err1 != nil || err2 != nil || err != nil {
		t.Fatalf("writing the partitions: %v %v %v", err1, err2, err)
	}
	// The kernel reads each filesystem image: its view is what the mount must show.
	for i, part := range []string{p1, p2} {
		id := fmt.Sprintf("p%d", i+1)
		k := filepath.Join(dir, "kernel-"+id)
		os.Mkdir(k, 0o755)
		run(t, "mount", "-o", "loop,ro,noatime", part, k)
		err := filepath.WalkDir(k, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(k, p)
			img.sums[filepath.Join(id, rel)] = sha256.Sum256(b)
			return err
		})
		testfix.Unmount(t, k)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(part)
	}
	return img
}

// fileBytes is n bytes, either random or repetitive text (squashfs and ext4 see both kinds).
func fileBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	if r.IntN(2) == 0 {
		for i := 0; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		return b
	}
	line := fmt.Sprintf("line of a compressible file, seed %d: ", r.Uint32())
	for i := range b {
		b[i] = line[i%len(line)] + byte(i/len(line)%7)
	}
	return b
}
