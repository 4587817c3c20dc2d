package untar

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHostileTar: members that would write outside the extraction folder, or block on a FIFO an
// earlier member made, are refused or replaced.
func TestHostileTar(t *testing.T) {
	outside := t.TempDir()
	for name, members := range map[string][]tar.Header{
		"through a symlink": {{Name: "l", Linkname: outside, Typeflag: tar.TypeSymlink}, {Name: "l/evil", Typeflag: tar.TypeReg}},
		"over a symlink":    {{Name: "l", Linkname: filepath.Join(outside, "evil"), Typeflag: tar.TypeSymlink}, {Name: "l", Typeflag: tar.TypeReg, Size: 0}},
		"over a FIFO":       {{Name: "p", Typeflag: tar.TypeFifo, Mode: 0o644}, {Name: "p", Typeflag: tar.TypeReg}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range members {
			h.Mode |= 0o644
			tw.WriteHeader(&h)
		}
		tw.Close()
		src := filepath.Join(t.TempDir(), "x.tar")
		os.WriteFile(src, b.Bytes(), 0o644)
		done := make(chan error, 1)
		go func() { done <- Extract(src, t.TempDir()) }()
		select {
		case err := <-done:
			t.Logf("%s: %v", name, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: extraction hangs", name)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: wrote outside: %v", name, ents)
		}
	}
}
