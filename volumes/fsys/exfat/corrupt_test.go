package exfat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func TestCorruptImages(t *testing.T) {
	img := fixture(t)
	v := open(t, img)
	clone := func() []byte { return append([]byte(nil), img...) }

	t.Run("directory chain loop", func(t *testing.T) {
		b := clone()
		n, _ := v.lookup("t", "many")
		if n.ent.contiguous {
			t.Fatal("fixture's many/ is contiguous")
		}
		c, err := v.tab.Walk(n.ent.first, -1)
		if err != nil {
			t.Fatal(err)
		}
		// Point the chain's first cluster at itself, well before the directory's length is covered.
		binary.LittleEndian.PutUint32(b[v.g.fatOffset+int64(c.Runs[0].First)*4:], c.Runs[0].First)
		if _, err := open(t, b).ReadDir("many"); err == nil || !strings.Contains(err.Error(), "loops back to cluster") {
			t.Errorf("ReadDir of a directory whose chain loops: %v", err)
		}
	})
	t.Run("root chain loop", func(t *testing.T) {
		b := clone()
		binary.LittleEndian.PutUint32(b[v.g.fatOffset+int64(v.g.rootCluster)*4:], v.g.rootCluster)
		if _, err := Open(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "loops back to cluster") {
			t.Errorf("Open with a looping root: %v", err)
		}
	})
	t.Run("contiguous run past the heap", func(t *testing.T) {
		b := patchSet(t, clone(), "zeros.bin", func(set []byte) { binary.LittleEndian.PutUint32(set[32+20:], v.g.clusters) })
		if _, err := fs.ReadFile(open(t, b), "zeros.bin"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "leaves the cluster heap") {
			t.Errorf("read: %v", err)
		}
	})
	t.Run("directory size beyond volume", func(t *testing.T) {
		b := patchSet(t, clone(), "deep", func(set []byte) { binary.LittleEndian.PutUint64(set[32+24:], 1<<40) })
		if _, err := open(t, b).ReadDir("deep"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ReadDir: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		if _, err := Open(bytes.NewReader(img[:4096]), 4096); err == nil {
			t.Error("4 KiB prefix opened")
		}
		if _, err := Open(bytes.NewReader(img[:100]), 100); err == nil {
			t.Error("100-byte prefix opened")
		}
	})
	t.Run("not exfat", func(t *testing.T) {
		b := clone()
		copy(b[3:], "NTFS    ")
		copy(b[12*512+3:], "NTFS    ")
		if _, err := Open(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrNotExFAT) {
			t.Errorf("Open: %v", err)
		}
	})
}

// TestConcurrentReadAt reads files from many goroutines at once.
func TestConcurrentReadAt(t *testing.T) {
	v := open(t, fixture(t))
	want := map[string][]byte{}
	for _, p := range []string{"big.txt", "zeros.bin", "grown.bin", "short.txt"} {
		b, err := fs.ReadFile(v, p)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = b
	}
	testfix.ConcurrentReadAt(t, v, want, 3001, 1500)
}
