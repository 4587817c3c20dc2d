package ext4

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

func TestHugeDirectory(t *testing.T) {
	t.Parallel() // mostly waiting on the kernel: overlap it with the other mount tests
	img := testfix.BigDirImage(t)
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
	if len(ents) != testfix.BigDirEntries {
		t.Fatalf("listed %d entries, want %d", len(ents), testfix.BigDirEntries)
	}
	want := make(map[string]bool, testfix.BigDirEntries)
	for i := range testfix.BigDirEntries {
		want[testfix.BigDirName(i)] = true
	}
	for _, e := range ents {
		if !want[e.Name()] || !e.Type().IsRegular() {
			t.Fatalf("unexpected entry %v", e)
		}
	}
	// Lookups of single names, on a warm and on a cold cache.
	start = time.Now()
	for range 10000 {
		name := "big/" + testfix.BigDirName(rand.IntN(testfix.BigDirEntries))
		if _, err := f.Lstat(name); err != nil {
			t.Fatal(err)
		}
	}
	warm := time.Since(start)
	cold := openImage(t, img)
	start = time.Now()
	if _, err := cold.Lstat("big/" + testfix.BigDirName(77777)); err != nil {
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
		name := testfix.BigDirName(rand.IntN(testfix.BigDirEntries))
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
