package untar

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// FuzzExtract: a hostile archive (plain, gzip or xz) gives an error or a tree, never a panic and never
// a file outside the extraction folder.
func FuzzExtract(f *testing.F) {
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
	var xzb bytes.Buffer
	xw, _ := xz.NewWriter(&xzb)
	xw.Write(b.Bytes())
	xw.Close()
	f.Add(xzb.Bytes())  // the xz framing guard's paths
	maxMember = 1 << 20 // a sparse member may claim any size: keep each run short
	// One folder for every input, the archive read from memory: a file and two folders made and
	// removed per input cost more than the extraction (ext4 looks for recently deleted inodes).
	top := f.TempDir()
	dir := filepath.Join(top, "out")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		ExtractFrom(bytes.NewReader(data), "in.tar", dir)
		ents, _ := os.ReadDir(top)
		if len(ents) != 1 {
			t.Fatalf("extraction wrote beside its folder: %v", ents)
		}
	})
}
