package fat

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// FuzzBootSector feeds arbitrary boot sectors to the BPB validator.
func FuzzBootSector(f *testing.F) {
	for _, n := range fixtures {
		f.Add(append([]byte(nil), fixture(f, n)[:512]...), int64(40<<20))
	}
	// Boot sectors written by another formatter (rust-fatfs), when the acceptance corpus is present.
	corpus := filepath.Join(testfix.RepoRoot(f), "..", "shared", "acceptance", "corpus", "rust-fatfs")
	for _, name := range []string{"fat12.img", "fat16.img"} {
		if b, err := os.ReadFile(filepath.Join(corpus, name)); err == nil {
			f.Add(b[:512], int64(len(b)))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		g, err := parseBoot(b, size)
		if err != nil {
			return
		}
		if g.clusters == 0 || g.dataOffset > size || g.fatBytes*8/int64(g.typ) < int64(g.clusters)+2 {
			t.Fatalf("accepted inconsistent geometry %+v", g)
		}
	})
}

// FuzzFATChain walks chains through an arbitrary FAT of each width.
func FuzzFATChain(f *testing.F) {
	v, _ := openFixture(f, "fat12")
	raw := make([]byte, v.g.fatBytes)
	if _, err := v.r.ReadAt(raw, v.g.fatOffset); err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), raw[:192]...), uint32(2), uint8(12))
	f.Add([]byte{0xF8, 0xFF, 0xFF, 3, 0, 2, 0}, uint32(2), uint8(16))
	f.Fuzz(func(t *testing.T, fat []byte, first uint32, bitsSel uint8) {
		typ := []Type{FAT12, FAT16, FAT32}[int(bitsSel)%3]
		entries := int64(len(fat)) * 8 / int64(typ)
		if entries < 3 {
			return
		}
		g := &geometry{typ: typ, clusters: uint32(entries - 2), fatBytes: int64(len(fat)), clusterSize: 512}
		tab := newTable(bytes.NewReader(fat), g)
		c, err := tab.Walk(first, -1)
		if err != nil {
			return
		}
		if c.Clusters > int64(g.clusters)+1 {
			t.Fatalf("chain of %d clusters on a %d-cluster volume", c.Clusters, g.clusters)
		}
		if _, err := tab.countFree(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDirEntries parses arbitrary directory bytes, LFN slots included.
func FuzzDirEntries(f *testing.F) {
	v, _ := openFixture(f, "fat16")
	raw, _, err := v.readDirBytes(0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), raw[:1024]...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, d := range parseDir(raw, func(i int) int64 { return int64(i) }) {
			if !validName(d.name) {
				t.Fatalf("invalid name %q", d.name)
			}
			_ = fatTime(d.modDate, d.modTime, d.crtCS)
		}
	})
}

// FuzzVolume overlays the boot sector, the start of the FAT and the start of the root directory of the
// FAT12 fixture, then walks and reads the whole tree. (Inputs stay small: Go's fuzzer is slow with
// multi-kilobyte inputs.)
func FuzzVolume(f *testing.F) {
	img := fixture(f, "fat12")
	v, _ := openFixture(f, "fat12")
	fatOff, rootOff := v.g.fatOffset, v.g.rootOffset
	f.Add(append([]byte(nil), img[:512]...), append([]byte(nil), img[fatOff:fatOff+128]...), append([]byte(nil), img[rootOff:rootOff+512]...))
	f.Fuzz(func(t *testing.T, boot, fat, root []byte) {
		ov := &testfix.Overlay{Base: img, Patches: []testfix.Patch{
			{Off: 0, Data: boot[:min(len(boot), 512)]},
			{Off: fatOff, Data: fat[:min(len(fat), 512)]},
			{Off: rootOff, Data: root[:min(len(root), 1024)]},
		}}
		v, err := Open(ov, int64(len(img)))
		if err != nil {
			return
		}
		_ = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fl, err := v.Open(p); err == nil {
				_, _ = io.CopyN(io.Discard, fl, 16<<10)
				fl.Close()
			}
			return nil
		})
		_ = v.Usage()
	})
}
