package vddk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// Fuzzing feeds whole files to Open and then reads them: no input may panic, hang, or make us allocate
// more than the file justifies.

func FuzzParseDescriptor(f *testing.F) {
	for _, name := range []string{"custom.vmdk", "mono-flat.vmdk", "split-sparse.vmdk"} {
		if b, err := os.ReadFile(fixture(f, name)); err == nil {
			f.Add(b)
		}
	}
	// Descriptors written by VMware and other tools, from the acceptance corpus when it is present.
	for _, name := range []string{"vmdk-forensic/flat.vmdk", "vmdk-forensic/ms3-win.vmdk", "vmdk-forensic/tw_sparse.vmdk",
		"vmdk-rs/twoGbMaxExtentSparse.vmdk", "vmdk-rs/vmfs_thick.vmdk"} {
		if b, ok := corpusSeed(f, name); ok {
			f.Add(b)
		}
	}
	f.Add([]byte("version=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"custom\"\nRW 10 FLAT \"a b.vmdk\" 5\nRDONLY 4 ZERO\nddb.x = \"y\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			return
		}
		if len(d.Extents) == 0 || d.Capacity() < 0 || d.Capacity() > maxCapacitySectors {
			t.Fatalf("accepted a descriptor with %d extents and capacity %d", len(d.Extents), d.Capacity())
		}
	})
}

// FuzzOpenImage fuzzes single-file images: hosted sparse (v1-3, stream-optimized), COWD and seSparse.
func FuzzOpenImage(f *testing.F) {
	// Small seeds keep the fuzzer fast (large ones stall it): one per format variant.
	for _, v := range []string{"plain", "zeroed", "stream", "stream-nofooter"} {
		f.Add(tinySparse(v))
	}
	dir := f.TempDir()
	writeCOWD(f, filepath.Join(dir, "cowd"), 2048, 1, []esxGrainWrite{{grain: 0, data: make([]byte, 512)}, {grain: 100, data: []byte(string(make([]byte, 512)))}})
	writeSESparse(f, filepath.Join(dir, "se"), 2048, []esxGrainWrite{{grain: 1, data: make([]byte, 4096)}, {grain: 2, kind: 2}})
	for _, name := range []string{"cowd", "se"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			f.Add(b)
		}
	}
	// Two real empty 64 KiB disks from the acceptance corpus (other tools' layouts of header and tables).
	for _, name := range []string{"vmdk-forensic/minimal.vmdk", "go-vmdk-parser/vmdk-streamoptimized.img"} {
		if b, ok := corpusSeed(f, name); ok {
			f.Add(b)
		}
	}
	work := fuzzWorkDir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(work, "fuzz.vmdk")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzOpenAndRead(t, p, 256<<10)
	})
}

// fuzzOpenAndRead opens p and, when it opens, reads its start, middle and end (each range it maps to
// a file must hold what ReadAt read), maps its first 64 MiB and builds its Info: an error is fine as
// long as it carries a VixDiskLib code.
func fuzzOpenAndRead(t *testing.T, p string, bufSize int) {
	d, err := Open(p, Options{})
	if err != nil {
		if CodeOf(err) == ErrFail {
			t.Fatalf("error without a VixDiskLib code: %v", err)
		}
		return
	}
	defer d.Close()
	buf := make([]byte, bufSize)
	span := make([]byte, bufSize)
	for _, off := range []int64{0, d.Size() / 2, d.Size() - int64(len(buf))} {
		off = max(0, off)
		n, err := d.ReadAt(buf, off)
		// A range mapped to a file (what copies and the mount hand to the kernel) holds what ReadAt reads.
		if f, fo, ok := d.FileSpan(off, int64(n)); ok && err == nil {
			if k, _ := f.ReadAt(span[:n], fo); k == n && !bytes.Equal(span[:n], buf[:n]) {
				t.Fatalf("FileSpan(%d, %d) maps to bytes at %d that differ from ReadAt", off, n, fo)
			}
		}
	}
	sectors := uint64(min(d.Size(), 64<<20) / SectorSize)
	d.AllocatedBlocks(0, sectors, 128)
	_ = d.Info()
}

// corpusSeed reads a file of the acceptance corpus; ok is false when the corpus is absent.
func corpusSeed(tb testing.TB, name string) (b []byte, ok bool) {
	dir := testfix.Corpus(tb)
	if dir == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		tb.Fatalf("corpus seed: %v", err)
	}
	return b, true
}

// fuzzWorkDir is a folder in memory when the machine has one: every execution writes its input to a
// file, and a busy disk would otherwise set the pace.
func fuzzWorkDir(tb testing.TB) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "vddk-fuzz-")
		if err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}
