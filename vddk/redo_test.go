package vddk

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNumberedPath(t *testing.T) {
	for _, c := range [][3]any{{"r.vmdk", 0, "r.vmdk"}, {"d/r.vmdk", 2, "d/r-2.vmdk"}, {"r", 1, "r-1"}, {"", 3, ""}} {
		if got := NumberedPath(c[0].(string), c[1].(int)); got != c[2] {
			t.Errorf("NumberedPath(%q, %d) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

// OpenRedo of a network disk: a temporary redo log leaves no file behind and takes writes over the
// remote's data; one at a path stays, naming the URI as its parent.
func TestOpenRedoOverRemote(t *testing.T) {
	const uri = "memdisk:///good"
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	d, err := OpenRedo(uri, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a temporary redo log left %v behind", left)
	}
	if _, err := d.WriteAt([]byte{0xee}, 10); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := d.ReadAt(b, 10); err != nil || b[0] != 0xee || b[1] != 12 {
		t.Errorf("read through the temporary redo log: %v %v", b, err)
	}
	d.Close()
	p := filepath.Join(t.TempDir(), "r.vmdk")
	remoteOpens.Store(0)
	d, err = OpenRedo(uri, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if n := remoteOpens.Load(); n != 2 { // one to make the redo log, one to open it
		t.Errorf("OpenRedo connected %d times to the network disk, want 2", n)
	}
	kept, err := Open(p, Options{RemoteParent: uri})
	if err != nil {
		t.Fatalf("the kept redo log: %v", err)
	}
	defer kept.Close()
	if hint := kept.Info().ParentFileNameHint; hint != uri {
		t.Errorf("the kept redo log's parent is %q, want %q", hint, uri)
	}
	// A temporary redo log over the kept one: the caller's RemoteParent reaches the kept one's parent.
	tmpRedo, err := OpenRedo(p, "", Options{RemoteParent: uri})
	if err != nil {
		t.Fatalf("a temporary redo log over a redo log of a network disk: %v", err)
	}
	defer tmpRedo.Close()
	if _, err := tmpRedo.ReadAt(b, 10); err != nil || b[0] != 11 {
		t.Errorf("read through both redo logs: %v %v", b, err)
	}
}
