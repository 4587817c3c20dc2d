package exfat

import (
	"io"
	"io/fs"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// FuzzBootRegion overlays an arbitrary boot sector on the fixture's boot region and validates it. The
// fuzzer's inputs rarely match the region checksum, so with seal set the checksum is recomputed first.
// (Inputs stay one sector long: Go's fuzzer is slow with multi-kilobyte inputs.)
func FuzzBootRegion(f *testing.F) {
	img := fixture(f)
	region := img[:12*512]
	f.Add(append([]byte(nil), region[:512]...), false)
	f.Add(append([]byte(nil), region[:512]...), true)
	f.Fuzz(func(t *testing.T, sector []byte, seal bool) {
		b := append([]byte(nil), region...)
		copy(b, sector)
		if seal {
			sum := bootChecksum(b[:11*512])
			for off := 11 * 512; off < 12*512; off += 4 {
				b[off], b[off+1], b[off+2], b[off+3] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
			}
		}
		g, err := parseBootRegion(b, 8<<20)
		if err != nil {
			return
		}
		if g.fatOffset+g.fatBytes > 8<<20 || g.rootCluster < 2 || g.rootCluster > g.maxCluster() {
			t.Fatalf("accepted inconsistent geometry %+v", g)
		}
	})
}

// FuzzEntrySets parses arbitrary directory bytes as entry sets.
func FuzzEntrySets(f *testing.F) {
	v := open(f, fixture(f))
	raw, _, err := v.readDirBytes(v.g.rootCluster, -1, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), raw[:1024]...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var sp special
		ents, _ := parseDir(raw, func(i int) int64 { return int64(i) }, &sp)
		for _, e := range ents {
			if e.name == "" || e.name == "." || e.name == ".." {
				t.Fatalf("invalid name %q", e.name)
			}
		}
	})
}

// FuzzVolume overwrites the start of the FAT and of the root directory of the fixture, then walks and
// reads everything.
func FuzzVolume(f *testing.F) {
	img := fixture(f)
	v := open(f, img)
	rootOff := v.clusterOffset(v.g.rootCluster)
	f.Add(append([]byte(nil), img[v.g.fatOffset:v.g.fatOffset+128]...), append([]byte(nil), img[rootOff:rootOff+512]...))
	f.Fuzz(func(t *testing.T, fat, root []byte) {
		ov := &testfix.Overlay{Base: img, Patches: []testfix.Patch{
			{Off: v.g.fatOffset, Data: fat[:min(int64(len(fat)), v.g.fatBytes)]},
			{Off: rootOff, Data: root[:min(int64(len(root)), v.g.clusterSize)]},
		}}
		w, err := Open(ov, int64(len(img)))
		if err != nil {
			return
		}
		_ = fs.WalkDir(w, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fl, err := w.Open(p); err == nil {
				_, _ = io.CopyN(io.Discard, fl, 16<<10)
				fl.Close()
			}
			return nil
		})
		_ = w.Usage()
	})
}
