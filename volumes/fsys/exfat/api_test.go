package exfat

import (
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
