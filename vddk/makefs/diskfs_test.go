package makefs

// Tests that show the go-diskfs v1.9.4 problems Make works around: each builds with go-diskfs alone,
// shows the damage with an independent tool, then shows the repair.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

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
	// Each folder's parent inode is left 0; sqRewrite writes them.
	if err := sqRewrite(f, 0, 0); err != nil {
		t.Fatal(err)
	}
}
