package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func reopen(t *testing.T, b []byte) (*FS, error) {
	t.Helper()
	v, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	return v.(*FS), nil
}

func entryPos(t *testing.T, v *FS, name string) (int64, *dirent) {
	t.Helper()
	n, err := v.lookup("test", name)
	if err != nil || n.ent == nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return n.ent.pos, n.ent
}

func setFAT16(b []byte, v *FS, cluster, val uint32) {
	for i := 0; i < v.g.numFATs; i++ {
		binary.LittleEndian.PutUint16(b[v.g.fatOffset+int64(i)*v.g.fatBytes+int64(cluster)*2:], uint16(val))
	}
}

func TestCorruptImages(t *testing.T) {
	orig := fixture(t, "fat16")
	base, err := reopen(t, orig)
	if err != nil {
		t.Fatal(err)
	}
	clone := func() []byte { return append([]byte(nil), orig...) }

	t.Run("directory chain loop", func(t *testing.T) {
		b := clone()
		_, e := entryPos(t, base, "many")
		c, err := base.tab.Walk(e.cluster, -1)
		if err != nil {
			t.Fatal(err)
		}
		last := c.Runs[len(c.Runs)-1]
		setFAT16(b, base, last.First+last.Count-1, e.cluster)
		v, err := reopen(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.ReadDir("many"); err == nil || !strings.Contains(err.Error(), "loops back to cluster") {
			t.Errorf("ReadDir of a looping directory: %v", err)
		}
	})
	t.Run("chain into free cluster", func(t *testing.T) {
		b := clone()
		_, e := entryPos(t, base, "big.txt")
		setFAT16(b, base, e.cluster, 0)
		v, _ := reopen(t, b)
		_, err := fs.ReadFile(v, "big.txt")
		if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "free cluster") {
			t.Errorf("read: %v", err)
		}
	})
	t.Run("chain out of range", func(t *testing.T) {
		b := clone()
		_, e := entryPos(t, base, "big.txt")
		setFAT16(b, base, e.cluster, 0xFFF0)
		v, _ := reopen(t, b)
		if _, err := fs.ReadFile(v, "big.txt"); err == nil || !strings.Contains(err.Error(), "invalid cluster") {
			t.Errorf("read: %v", err)
		}
	})
	t.Run("size beyond chain", func(t *testing.T) {
		b := clone()
		pos, _ := entryPos(t, base, "short.txt")
		binary.LittleEndian.PutUint32(b[pos+28:], 1<<30)
		v, _ := reopen(t, b)
		if _, err := fs.ReadFile(v, "short.txt"); err == nil || !strings.Contains(err.Error(), "only 1 clusters") {
			t.Errorf("read: %v", err)
		}
	})
	t.Run("directory links to ancestor", func(t *testing.T) {
		b := clone()
		_, a := entryPos(t, base, "deep/a")
		pos, _ := entryPos(t, base, "deep/a/b")
		binary.LittleEndian.PutUint16(b[pos+26:], uint16(a.cluster))
		v, _ := reopen(t, b)
		err := fs.WalkDir(v, ".", func(string, fs.DirEntry, error) error { return nil })
		if _, err2 := v.Stat("deep/a/b/b"); err2 == nil || !strings.Contains(err2.Error(), "ancestor") {
			t.Errorf("stat through a directory loop: %v (walk %v)", err2, err)
		}
	})
	t.Run("subdirectory with cluster 0", func(t *testing.T) {
		b := clone()
		pos, _ := entryPos(t, base, "deep")
		binary.LittleEndian.PutUint16(b[pos+26:], 0)
		v, _ := reopen(t, b)
		ents, err := v.ReadDir("deep")
		if err != nil || len(ents) != 0 {
			t.Errorf("ReadDir: %d entries, %v", len(ents), err)
		}
		count := func(v fs.FS) int {
			n := 0
			if err := fs.WalkDir(v, ".", func(string, fs.DirEntry, error) error { n++; return nil }); err != nil {
				t.Errorf("walk: %v", err)
			}
			return n
		}
		// deep/ held a/…/j/leaf.txt: 11 entries fewer, not the root's tree again.
		if got, want := count(v), count(base)-11; got != want {
			t.Errorf("walk: %d entries, want %d", got, want)
		}
	})
	t.Run("bad bpb", func(t *testing.T) {
		for _, c := range []struct {
			off  int
			val  byte
			want string
		}{{12, 0, "bytes per sector"}, {13, 3, "sectors per cluster"}, {16, 0, "number of FATs"}, {21, 0x12, "media"}, {22, 0, "FAT32 version"}} {
			b := clone()
			b[c.off] = c.val
			if c.off == 22 {
				b[23] = 0 // read as a FAT32 BPB, whose version field holds FAT16 boot code
			}
			if _, err := reopen(t, b); err == nil || !errors.Is(err, ErrNotFAT) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("byte %d=%#x: %v", c.off, c.val, err)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		if _, err := reopen(t, orig[:4096]); err == nil || !errors.Is(err, ErrNotFAT) {
			t.Errorf("4 KiB prefix: %v", err)
		}
		pos, e := entryPos(t, base, "big.txt")
		_ = pos
		cut := base.clusterOffset(e.cluster) + 1000
		v, err := reopen(t, orig[:cut])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.ReadFile(v, "big.txt"); err == nil || !strings.Contains(err.Error(), "beyond the end") {
			t.Errorf("read past the image end: %v", err)
		}
	})
}

// TestFAT32BackupBoot wipes the primary boot sector: the backup at sector 6 must serve the same tree.
func TestFAT32BackupBoot(t *testing.T) {
	b := fixture(t, "fat32")
	clear(b[:512])
	v, err := reopen(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Info().BackupBoot {
		t.Error("backup boot sector not reported")
	}
	got, err := fs.ReadFile(v, "deep/a/b/c/d/e/f/g/h/i/j/leaf.txt")
	if err != nil || string(got) != "deep leaf\n" {
		t.Errorf("leaf: %q %v", got, err)
	}
}

// TestConcurrentReadAt reads every file of the FAT32 fixture from many goroutines at once and checks
// each sees the same bytes as a sequential read.
func TestConcurrentReadAt(t *testing.T) {
	v, _ := openFixture(t, "fat32")
	want := map[string][]byte{}
	for _, p := range []string{"big.txt", "zeros.bin", "short.txt", "many/0100 file with a long name.txt"} {
		b, err := fs.ReadFile(v, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want[p] = b
	}
	testfix.ConcurrentReadAt(t, v, want, 4093, 1000)
}

// TestFourKSectors checks the 4096-byte-sector fixture really has that geometry (the tree itself is
// compared with mtools and sleuthkit like the others).
func TestFourKSectors(t *testing.T) {
	v, _ := openFixture(t, "fat16-4k")
	if v.g.sectorSize != 4096 || v.Info().Type != FAT16 || v.Info().ClusterSize != 4096 {
		t.Errorf("geometry %+v", v.Info())
	}
}
