package fat

import (
	"errors"
	"io/fs"
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
