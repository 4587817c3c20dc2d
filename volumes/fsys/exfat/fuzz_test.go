package exfat

import (
	"bytes"
	"io"
	"io/fs"
	"testing"
)

// FuzzBootRegion feeds arbitrary 12-sector boot regions to the validator (checksum included: the
// fuzzer's inputs rarely pass it, so a second mode re-seals the checksum first).
func FuzzBootRegion(f *testing.F) {
	img := fixture(f)
	f.Add(img[:12*512], false)
	f.Add(img[:12*512], true)
	f.Fuzz(func(t *testing.T, b []byte, seal bool) {
		if seal && len(b) >= 12*512 {
			b = append([]byte(nil), b[:12*512]...)
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
	f.Add(raw[:2048])
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
	f.Add(img[v.g.fatOffset:v.g.fatOffset+512], img[rootOff:rootOff+1024])
	f.Fuzz(func(t *testing.T, fat, root []byte) {
		b := append([]byte(nil), img...)
		copy(b[v.g.fatOffset:v.g.fatOffset+min(int64(len(fat)), v.g.fatBytes)], fat)
		copy(b[rootOff:rootOff+min(int64(len(root)), v.g.clusterSize)], root)
		w, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		_ = fs.WalkDir(w, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fl, err := w.Open(p); err == nil {
				_, _ = io.Copy(io.Discard, fl)
				fl.Close()
			}
			return nil
		})
		_ = w.Usage()
	})
}
