package inspect

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
)

func guestView(t *testing.T, disk string) fsys.FS {
	t.Helper()
	set, closer, err := volumes.OpenFiles([]string{disk}, vddk.Options{}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	trees := NewTrees(set, volumes.TreeOptions{})
	t.Cleanup(func() { trees.Close() })
	oses := Inspect(trees)
	if len(oses) != 1 {
		t.Fatalf("%d OSes", len(oses))
	}
	v, err := GuestView(trees, oses[0], nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameFiles checks that every file under src (the folder mkfs.ext4 -d or ntfs-3g was given) reads the
// same at at in the view.
// Folders named in hidden are mount points in the view: the source's files there are covered.
func sameFiles(t *testing.T, view fsys.FS, src, at string, hidden ...string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && slices.Contains(hidden, rel) {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		name := filepath.ToSlash(filepath.Join(at, rel))
		want, _ := os.ReadFile(p)
		f, err := view.Open(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return nil
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if string(got) != string(want) {
			t.Errorf("%s: %d bytes differ from the source's %d", name, len(got), len(want))
		}
		n++
		return nil
	})
	return n
}

func TestGuestViewLinux(t *testing.T) {
	dir := t.TempDir()
	view := guestView(t, inspecttest.LinuxDisk(t, dir))
	n := sameFiles(t, view, filepath.Join(dir, "root"), ".", "boot", "home", "srv")
	n += sameFiles(t, view, filepath.Join(dir, "bootfs"), "boot")
	n += sameFiles(t, view, filepath.Join(dir, "homefs"), "home")
	n += sameFiles(t, view, filepath.Join(dir, "srvfs"), "srv")
	if n < 8 {
		t.Fatalf("only %d files compared", n)
	}
	if _, err := view.Stat("boot/.keep"); err == nil {
		t.Error("the root's boot/.keep shows through the /boot mount")
	}
}

func TestGuestViewWindows(t *testing.T) {
	dir := t.TempDir()
	disk, _, _ := inspecttest.WindowsGPT(t, dir)
	view := guestView(t, disk)
	n := sameFiles(t, view, filepath.Join(dir, "c"), "C")
	n += sameFiles(t, view, filepath.Join(dir, "dsrc"), "D")
	ents, err := view.ReadDir(".")
	if err != nil || len(ents) != 2 || ents[0].Name() != "C" || ents[1].Name() != "D" || n < 5 {
		t.Fatalf("top: %v %v (%d files)", ents, err, n)
	}
}
