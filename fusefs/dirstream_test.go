package fusefs_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// A 5,000-entry ext4 directory listed through the mount, which streams it (fsys.DirStreamer), gives
// the kernel's loop-mount listing; listing in pieces, rewinding, and a second open give it again.
func TestStreamedDirectoryMatchesKernel(t *testing.T) {
	needMounts(t)
	needTools(t, "mke2fs")
	dir := t.TempDir()
	big := filepath.Join(dir, "src", "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if err := os.WriteFile(filepath.Join(big, fmt.Sprintf("entry-%05d-%x", i, i*7919)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "ext4.img")
	run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-N", "6000", "-d", filepath.Join(dir, "src"), img, "64M")
	disk := filepath.Join(dir, "disk.vmdk")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", img, disk)
	ours, v := mountVolume(t, disk, "")
	if tr, err := v.OpenTree(volumes.TreeOptions{}); err != nil {
		t.Fatal(err)
	} else if _, ok := tr.(fsys.DirStreamer); !ok {
		t.Fatal("the ext4 tree does not stream: the test would not cover streamed listings")
	} else {
		tr.Close()
	}
	k := filepath.Join(dir, "k")
	os.Mkdir(k, 0o755)
	run(t, "mount", "-o", "loop,ro,noatime", img, k)
	defer exec.Command("umount", k).Run()

	want := names(t, filepath.Join(k, "big"))
	if len(want) != 5000 {
		t.Fatalf("the kernel lists %d entries", len(want))
	}
	if got := names(t, filepath.Join(ours, "big")); !slices.Equal(got, want) {
		t.Fatalf("the mount lists %d entries, the kernel %d", len(got), len(want))
	}
	// In pieces, then rewound: every piece continues where the last ended.
	f, err := os.Open(filepath.Join(ours, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pieces []string
	for range 3 {
		n, err := f.Readdirnames(1000)
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, n...)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	again, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(want) || !slices.Equal(pieces, again[:len(pieces)]) {
		t.Errorf("after rewinding: %d entries; the first %d same as before: %v", len(again), len(pieces), slices.Equal(pieces, again[:min(len(pieces), len(again))]))
	}
	slices.Sort(again)
	if !slices.Equal(again, want) {
		t.Error("the rewound listing differs from the kernel's")
	}
	// The entries are real: a stat through the mount answers.
	if _, err := os.Stat(filepath.Join(ours, "big", want[4321])); err != nil {
		t.Error(err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}
