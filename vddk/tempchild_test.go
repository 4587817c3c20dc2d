package vddk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A temporary child has no name in its folder from the start, with O_TMPFILE and with the fallback:
// it reads as its parent, takes writes, leaves the parent's bytes alone, and qemu-img reads a copy of
// it (parent + writes) as the chain.
func TestCreateTemporaryChild(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vmdk")
	if err := Create(base, CreateParams{Type: TypeMonolithicSparse, Capacity: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	w, err := Open(base, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	baseData := bytes.Repeat([]byte("parent data "), 40000)
	if _, err := w.WriteAt(baseData, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(base)
	before := sha256.Sum256(b)
	for _, c := range []struct {
		name    string
		tmpfile int
	}{{"O_TMPFILE", unix.O_TMPFILE}, {"unlinked at once", 0}} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			d, err := createTemporaryChild(base, tmp, Options{}, c.tmpfile)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("the temporary child has a name: %v", ents)
			}
			if d.Size() != 4<<20 || d.Path() != filepath.Join(tmp, "base-redo.vmdk") {
				t.Errorf("size %d, path %s", d.Size(), d.Path())
			}
			got := make([]byte, len(baseData))
			if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, baseData) {
				t.Fatalf("reads %q… %v, not the parent's data", got[:16], err)
			}
			payload := bytes.Repeat([]byte("child "), 3000)
			if _, err := d.WriteAt(payload, 1<<20+77); err != nil {
				t.Fatal(err)
			}
			if err := d.Flush(); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 4<<20)
			copy(want, baseData)
			copy(want[1<<20+77:], payload)
			all := make([]byte, 4<<20)
			if _, err := d.ReadAt(all, 0); err != nil || !bytes.Equal(all, want) {
				t.Errorf("reads back differently: %v", err)
			}
			// qemu-img judges a named copy of the unnamed file.
			img, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", d.links[0].descFile.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := exec.LookPath("qemu-img"); err == nil {
				cp := filepath.Join(t.TempDir(), "copy.vmdk")
				os.WriteFile(cp, img, 0o644)
				raw := filepath.Join(t.TempDir(), "chain.raw")
				if out, err := exec.Command("qemu-img", "convert", "-O", "raw", cp, raw).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img reads the child: %v\n%s", err, out)
				}
				if q, _ := os.ReadFile(raw); !bytes.Equal(q, want) {
					t.Error("qemu-img reads the chain differently")
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("the temporary child left %v", ents)
			}
		})
	}
	if b, _ := os.ReadFile(base); sha256.Sum256(b) != before {
		t.Error("the parent changed")
	}
	if _, err := CreateTemporaryChild(base, filepath.Join(dir, "missing"), Options{}); err == nil {
		t.Error("a temporary child in a missing folder was made")
	}
}
