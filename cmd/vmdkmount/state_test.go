package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// dirtyExt4 is a raw ext4 image copied while mounted read-write, after files were written and
// fsync'd: its journal needs recovery and holds the new files.
func dirtyExt4(t *testing.T) (img string, files []string) {
	t.Helper()
	return dirtyImage(t, 32<<20, []string{"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096"})
}

// dirtyImage is dirtyExt4 for any filesystem mkfs makes.
func dirtyImage(t *testing.T, size int64, mkfs []string) (img string, files []string) {
	t.Helper()
	live, mnt := testfix.MountLive(t, size, mkfs, "")
	for i := range 20 {
		name := fmt.Sprintf("f%02d", i)
		f, err := os.Create(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "file %s\n", name)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		files = append(files, name)
	}
	d, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	d.Sync()
	d.Close()
	return testfix.Snapshot(t, live), files
}

// TestListState: list reports a replayed ext4 journal or XFS log, and with --no-replay a dirty
// volume, in the JSON, the table and a note on standard error.
func TestListState(t *testing.T) {
	ext4img, _ := dirtyExt4(t)
	xfsimg, _ := dirtyImage(t, 300<<20, []string{"mkfs.xfs", "-q", "-f"})
	for _, img := range []string{ext4img, xfsimg} {
		listState(t, img)
	}
}

func listState(t *testing.T, img string) {
	t.Helper()
	for _, c := range []struct {
		args  []string
		state string
	}{{nil, "replayed"}, {[]string{"--no-replay"}, "dirty"}} {
		vols := listJSON(t, append(c.args, img)...)
		if len(vols) != 1 || vols[0].VolumeState == nil || vols[0].State != c.state || vols[0].Detail == "" || !vols[0].Tree {
			t.Errorf("list --json %v: %+v, want state %s with a detail", c.args, vols, c.state)
		}
		out, errOut, err := run(t, append(append([]string{"list"}, c.args...), img)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "STATE") || !strings.Contains(out, c.state) {
			t.Errorf("list %v printed no state:\n%s", c.args, out)
		}
		if !strings.Contains(errOut, "note: volume disk is "+c.state+": ") {
			t.Errorf("list %v: no note on standard error: %q", c.args, errOut)
		}
	}
}

// TestMountAnnouncesState: a background mount prints the state of a volume that is not clean before
// it returns, shows the replayed tree, and with --no-replay the on-disk one.
func TestMountAnnouncesState(t *testing.T) {
	bin := buildBinary(t)
	img, files := dirtyExt4(t)
	before := sum(t, img)
	for _, c := range []struct {
		args  []string
		state string
	}{{nil, "replayed"}, {[]string{"--no-replay"}, "dirty"}} {
		dir := t.TempDir()
		mnt := mountPoint(t, bin, dir)
		cmd := exec.Command(bin, append(append([]string(nil), c.args...), img, mnt)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("mount %v: %v\n%s", c.args, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "note: volume disk is "+c.state+": ") {
			t.Errorf("mount %v: stderr %q names no %s state", c.args, stderr.String(), c.state)
		}
		ents, err := os.ReadDir(filepath.Join(mnt, "disk"))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, e := range ents {
			for _, f := range files {
				if e.Name() == f {
					seen++
				}
			}
		}
		if c.state == "replayed" && seen != len(files) {
			t.Errorf("the replayed tree shows %d of the %d fsync'd files", seen, len(files))
		}
		if c.state == "dirty" && seen == len(files) {
			t.Error("the on-disk tree already shows every file: the test image is not dirty")
		}
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v\n%s", err, out)
		}
	}
	if sum(t, img) != before {
		t.Error("the source's bytes changed")
	}
}
