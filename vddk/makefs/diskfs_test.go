package makefs

// Tests that show the go-diskfs v1.9.4 problems Make works around: each builds with go-diskfs alone,
// shows the damage with an independent tool, then shows the repair.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

func TestDiskfsFAT32Repairs(t *testing.T) {
	need(t, "fsck.vfat", "mdir")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(64 * mib)
	fs, err := fat32.Create(file.New(f, false), 64*mib, 0, 512, "T", false)
	if err != nil {
		t.Fatal(err)
	}
	const uni = "Ünïcødé ファイル.txt"
	for _, p := range []string{"dir", "dir/" + uni, "dir/empty"} {
		if p == "dir" {
			if err := fs.Mkdir(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(p, "empty") {
			w.Write([]byte("x"))
		}
		w.Close()
	}
	// Chtimes cannot find the non-ASCII long name again (it reads the 0xFFFF padding into the name).
	if err := fs.Chtimes("dir/"+uni, base, base, base); err == nil {
		t.Error("go-diskfs Chtimes found the Unicode name: the workaround may no longer be needed")
	}
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err == nil {
		t.Errorf("fsck.vfat accepts go-diskfs's FAT32 as written: the repairs may no longer be needed\n%s", out)
	}
	mt := time.Date(2022, 2, 2, 2, 2, 2, 0, time.Local)
	if err := fatFix(f, 0, map[string]time.Time{"dir/" + uni: mt}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat after the repairs: %v\n%s", err, out)
	}
	out, _ := exec.Command("mdir", "-i", img, "::/dir").CombinedOutput()
	if !strings.Contains(string(out), "2022-02-02   2:02  "+uni) {
		t.Errorf("mdir does not show the time set on %s:\n%s", uni, out)
	}
}

func TestDiskfsSquashfsSymlinkNeedsCwd(t *testing.T) {
	img := filepath.Join(t.TempDir(), "sq.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sq, err := squashfs.Create(file.New(f, false), 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sq.Workspace()) // Finalize forgets it, so Close alone leaves it behind
	defer sq.Close()
	os.WriteFile(filepath.Join(sq.Workspace(), "target"), []byte("t"), 0o644)
	if err := os.Symlink("target", filepath.Join(sq.Workspace(), "link")); err != nil {
		t.Fatal(err)
	}
	if err := sq.Finalize(squashfs.FinalizeOptions{}); err == nil || !strings.Contains(err.Error(), "readlink link") {
		t.Fatalf("Finalize outside the workspace: %v; the inDir workaround may no longer be needed", err)
	}
	if err := inDir(sq.Workspace(), func() error { return sq.Finalize(squashfs.FinalizeOptions{NoCompressInodes: true}) }); err != nil {
		t.Fatal(err)
	}
	// Each folder's parent inode is left 0; sqFixParents writes them.
	if err := sqFixParents(f, 0); err != nil {
		t.Fatal(err)
	}
}
