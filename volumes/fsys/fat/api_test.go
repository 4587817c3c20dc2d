package fat

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// TestNoLinksNoXattrs checks the calls FAT has nothing for answer as a vfat mount does.
func TestNoLinksNoXattrs(t *testing.T) {
	v, _ := openFixture(t, "fat12")
	if _, err := v.ReadLink("short.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink: %v", err)
	}
	if _, err := v.ReadLink("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadLink of a missing name: %v", err)
	}
	if names, err := v.ListXattr("short.txt"); err != nil || len(names) != 0 {
		t.Errorf("ListXattr: %v %v", names, err)
	}
	if _, err := v.GetXattr("short.txt", "user.x"); !errors.Is(err, fsys.ErrNoXattr) {
		t.Errorf("GetXattr: %v", err)
	}
	if fi, err := v.Lstat("deep"); err != nil || !fi.IsDir() {
		t.Errorf("Lstat: %v %v", fi, err)
	}
	if _, err := v.Stat("../x"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Stat of an invalid path: %v", err)
	}
	// Close drops the caches; the volume stays readable.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(v, "short.txt"); err != nil || string(b) != "hello, FAT\n" {
		t.Errorf("read after Close: %q %v", b, err)
	}
}

// TestFragmentedChainLoop walks a chain of more than 32 runs (where loop detection switches to a
// bitmap) that finally links back into itself, and the same chain ending properly.
func TestFragmentedChainLoop(t *testing.T) {
	fat := make([]byte, 2*200)
	put := func(n, v int) { fat[2*n], fat[2*n+1] = byte(v), byte(v>>8) }
	for c := 2; c < 100; c += 2 {
		put(c, c+2)
	}
	put(100, 0xFFFF)
	g := &geometry{typ: FAT16, clusters: 198, fatBytes: int64(len(fat)), clusterSize: 512}
	c, err := newTable(bytes.NewReader(fat), g).walk(2, -1)
	if err != nil || len(c.runs) != 50 || c.clusters != 50 || !c.complete {
		t.Fatalf("fragmented chain: %+v %v", c, err)
	}
	put(100, 40)
	_, err = newTable(bytes.NewReader(fat), g).walk(2, -1)
	if err == nil || !strings.Contains(err.Error(), "loops back to cluster 40") {
		t.Errorf("looping chain: %v", err)
	}
}
