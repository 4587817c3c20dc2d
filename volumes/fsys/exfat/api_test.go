package exfat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// TestNoLinksNoXattrs checks the calls exFAT has nothing for.
func TestNoLinksNoXattrs(t *testing.T) {
	v := open(t, fixture(t))
	if _, err := v.ReadLink("short.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink: %v", err)
	}
	if names, err := v.ListXattr("short.txt"); err != nil || len(names) != 0 {
		t.Errorf("ListXattr: %v %v", names, err)
	}
	if _, err := v.GetXattr("short.txt", "user.x"); !errors.Is(err, fsys.ErrNoXattr) {
		t.Errorf("GetXattr: %v", err)
	}
	if _, err := v.ReadDir("short.txt"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("ReadDir of a file: %v", err)
	}
	d, err := v.Open("deep")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(make([]byte, 4)); err == nil {
		t.Error("reading a directory succeeded")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(v, "short.txt"); err != nil || string(b) != "hello, FAT\n" {
		t.Errorf("read after Close: %q %v", b, err)
	}
}

// TestFragmentedChainLoop walks a chain of more than 32 runs that finally links back into itself.
func TestFragmentedChainLoop(t *testing.T) {
	fat := make([]byte, 4*200)
	for c := 2; c < 100; c += 2 {
		binary.LittleEndian.PutUint32(fat[4*c:], uint32(c+2))
	}
	binary.LittleEndian.PutUint32(fat[400:], 0xFFFFFFFF)
	g := &geometry{clusters: 198, fatBytes: int64(len(fat)), clusterSize: 512}
	c, err := newTable(bytes.NewReader(fat), g).walk(2, -1)
	if err != nil || len(c.runs) != 50 || !c.complete {
		t.Fatalf("fragmented chain: %+v %v", c, err)
	}
	binary.LittleEndian.PutUint32(fat[400:], 40)
	if _, err := newTable(bytes.NewReader(fat), g).walk(2, -1); err == nil || !strings.Contains(err.Error(), "loops back to cluster 40") {
		t.Errorf("looping chain: %v", err)
	}
}
