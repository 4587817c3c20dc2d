package btrfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// checkOpenInode: OpenInode, given the inode number our Stat shows for each regular file (unique across
// subvolumes), reads what the kernel reads at the same path of its mount; directories, unused numbers
// and numbers of no subvolume are refused as not existing or invalid.
func checkOpenInode(t *testing.T, ours *FS, mnt string) {
	files, inSubvol := 0, 0
	err := fs.WalkDir(ours, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		st, err := ours.Lstat(p)
		if err != nil {
			return err
		}
		ino := st.Sys().(*fsys.Stat).Ino
		want, err := os.ReadFile(filepath.Join(mnt, p))
		if err != nil {
			return err
		}
		f, err := ours.OpenInode(ino, p)
		if err != nil {
			t.Errorf("%s: OpenInode(%d): %v", p, ino, err)
			return nil
		}
		got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(want))+1))
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: inode %#x read %d bytes (%v), the kernel %d", p, ino, len(got), err, len(want))
		}
		files++
		if ino>>40 != 0 {
			inSubvol++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 || inSubvol == 0 {
		t.Fatalf("%d regular files, %d in subvolumes", files, inSubvol)
	}
	for _, ino := range []uint64{0, emptySubvolDir, rootDirIno, 1 << 39, 300<<40 | 257, 1<<64 - 1} {
		if _, err := ours.OpenInode(ino, "x"); err == nil {
			t.Errorf("OpenInode(%#x) succeeded", ino)
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("OpenInode(%#x): %v", ino, err)
		}
	}
}

// checkXattrInode: GetXattrInode, given each entry's Stat.Ino, returns the attributes GetXattr returns
// by path (which treecmp held to the kernel's), and ErrNoXattr for one the entry lacks.
func checkXattrInode(t *testing.T, ours *FS) {
	values := 0
	err := fs.WalkDir(ours, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := ours.Lstat(p)
		if err != nil {
			return err
		}
		ino := st.Sys().(*fsys.Stat).Ino
		names, err := ours.ListXattr(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			want, err := ours.GetXattr(p, n)
			if err != nil {
				return err
			}
			if got, err := ours.GetXattrInode(ino, p, n); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: GetXattrInode(%#x, %s) = %q, %v; by path %q", p, ino, n, got, err, want)
			}
			values++
		}
		if _, err := ours.GetXattrInode(ino, p, "user.absent"); !errors.Is(err, fsys.ErrNoXattr) {
			t.Errorf("%s: GetXattrInode(%#x, user.absent): %v", p, ino, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if values < 2 {
		t.Errorf("%d attribute values compared", values)
	}
}
