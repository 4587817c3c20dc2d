package ext4

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const bigDirEntries = 100000

// makeBigDirImage builds an ext4 image holding one directory of bigDirEntries empty files, created
// through a loop mount so the kernel builds the htree index as it goes (mke2fs -d is quadratic here).
func makeBigDirImage(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("building the image needs a loop mount, which needs root")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "big.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-N", "110000", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	mnt := filepath.Join(dir, "rw")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Fatalf("umount: %v: %s", err, out)
			}
		}
	}
	defer unmount()
	big := filepath.Join(mnt, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	// touch via xargs: far quicker than creating the files from race-instrumented Go code.
	var names strings.Builder
	for i := range bigDirEntries {
		names.WriteString(bigName(i))
		names.WriteByte(0)
	}
	touch := exec.Command("xargs", "-0", "touch")
	touch.Dir = big
	touch.Stdin = strings.NewReader(names.String())
	if out, err := touch.CombinedOutput(); err != nil {
		t.Fatalf("creating the entries: %v: %s", err, out)
	}
	unmount()
	return img
}

func bigName(i int) string { return fmt.Sprintf("file-%06d-%x", i, i*2654435761%1000003) }

func TestHugeDirectory(t *testing.T) {
	t.Parallel() // mostly waiting on the kernel: overlap it with the other mount tests
	img := makeBigDirImage(t)
	f := openImage(t, img)
	if in := in0(t, f, "big"); in.flags&flagIndex == 0 {
		t.Fatal("fixture directory has no htree index; the test would not cover one")
	}
	start := time.Now()
	ents, err := f.ReadDir("big")
	if err != nil {
		t.Fatal(err)
	}
	list := time.Since(start)
	if len(ents) != bigDirEntries {
		t.Fatalf("listed %d entries, want %d", len(ents), bigDirEntries)
	}
	want := make(map[string]bool, bigDirEntries)
	for i := range bigDirEntries {
		want[bigName(i)] = true
	}
	for _, e := range ents {
		if !want[e.Name()] || !e.Type().IsRegular() {
			t.Fatalf("unexpected entry %v", e)
		}
	}
	// Lookups of single names, on a warm and on a cold cache.
	start = time.Now()
	for range 10000 {
		name := "big/" + bigName(rand.IntN(bigDirEntries))
		if _, err := f.Lstat(name); err != nil {
			t.Fatal(err)
		}
	}
	warm := time.Since(start)
	cold := openImage(t, img)
	start = time.Now()
	if _, err := cold.Lstat("big/" + bigName(77777)); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	big := in0(t, cold, "big")
	if _, cached := cold.dirs.get(big.ino); cached {
		t.Error("a single lookup read the whole directory instead of its hash index")
	}
	if blk := readBlock0(t, cold, big); blk[30] < 1 {
		t.Errorf("index depth %d: the test does not cover interior index nodes", blk[30])
	}
	for range 3000 {
		name := bigName(rand.IntN(bigDirEntries))
		if e, found, usable := cold.htreeLookup(big, name); !found || !usable || e.name != name {
			t.Fatalf("index lookup of %s: found %v usable %v", name, found, usable)
		}
	}
	if _, err := f.Lstat("big/file-missing"); err == nil {
		t.Error("lookup of an absent name succeeded")
	}
	t.Logf("listing %d entries: %v; 10000 lookups: %v; first lookup on a cold cache: %v", len(ents), list, warm, first)
	// Generous bounds: the race detector slows everything ~10x, and CI runs packages side by side (the
	// lookups, each an inode-table read, once took 11 s there against 0.3 s alone). A rescan of the
	// directory per lookup (a listing takes 0.5 s under the race detector) would take over an hour.
	if list > time.Minute || warm > time.Minute || first > time.Minute {
		t.Errorf("too slow: list %v, 10000 lookups %v, cold lookup %v", list, warm, first)
	}
	// The kernel agrees on the names and inode numbers.
	mnt := mountRO(t, img)
	host, err := os.ReadDir(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if len(host) != len(ents) {
		t.Fatalf("kernel lists %d entries, we list %d", len(host), len(ents))
	}
	for i, h := range host {
		if h.Name() != ents[i].Name() {
			t.Fatalf("entry %d: kernel %q, ours %q", i, h.Name(), ents[i].Name())
		}
		if i%97 == 0 {
			hi, err := h.Info()
			if err != nil {
				t.Fatal(err)
			}
			oi, err := ents[i].Info()
			if err != nil {
				t.Fatal(err)
			}
			if hostIno(hi) != fsys.StatOf(oi).Ino {
				t.Errorf("%s: inode %d, kernel %d", h.Name(), fsys.StatOf(oi).Ino, hostIno(hi))
			}
		}
	}
}

func readBlock0(t *testing.T, f *FS, in *inode) []byte {
	t.Helper()
	d, err := f.dataOf(in)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, f.sb.blockSize)
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}
