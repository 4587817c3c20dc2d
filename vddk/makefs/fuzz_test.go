package makefs

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// FuzzExtractTar: a hostile archive (plain or gzip) gives an error or a tree, never a panic and never
// a file outside the extraction folder.
func FuzzExtractTar(f *testing.F) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "d/", Mode: 0o755, Typeflag: tar.TypeDir})
	tw.WriteHeader(&tar.Header{Name: "d/f", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.WriteHeader(&tar.Header{Name: "d/l", Linkname: "f", Typeflag: tar.TypeSymlink})
	tw.WriteHeader(&tar.Header{Name: "d/h", Linkname: "d/f", Typeflag: tar.TypeLink})
	tw.Close()
	f.Add(b.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b.Bytes())
	zw.Close()
	f.Add(gz.Bytes())
	maxMember = 1 << 20 // a sparse member may claim any size: keep each run short
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		src := filepath.Join(top, "in.tar")
		os.WriteFile(src, data, 0o644)
		dir := filepath.Join(top, "out")
		os.Mkdir(dir, 0o700)
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				panic(fmt.Sprintf("extractTar hangs on %q", data))
			}
		}()
		extractTar(src, dir)
		close(done)
		ents, _ := os.ReadDir(top)
		if len(ents) != 2 {
			t.Fatalf("extraction wrote beside its folder: %v", ents)
		}
	})
}
