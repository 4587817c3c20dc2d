package ext4

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// checkOpenInode: OpenInode, given the inode numbers the kernel reports for the files of its loop mount
// of the same image, reads what the kernel reads; directories, out-of-range and unused numbers are refused.
func checkOpenInode(t *testing.T, ours *FS, mnt string) {
	files := 0
	err := filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := ours.OpenInode(hostIno(fi), p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		got, err := io.ReadAll(io.NewSectionReader(f, 0, fi.Size()+1))
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: inode %d read %d bytes (%v), the kernel %d", p, hostIno(fi), len(got), err, len(want))
		}
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("the image has no regular files")
	}
	for _, ino := range []uint64{0, rootIno, uint64(ours.sb.inodesCount) + 1, 1 << 40} {
		if _, err := ours.OpenInode(ino, "x"); err == nil {
			t.Errorf("OpenInode(%d) succeeded", ino)
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, errCorrupt) {
			t.Errorf("OpenInode(%d): %v", ino, err)
		}
	}
}
