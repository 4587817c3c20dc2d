package vddk

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// allocatedBytes is the space a file takes on its file system.
func allocatedBytes(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// copyRawTo runs CopyRaw into a new file of dir and returns its path.
func copyRawTo(t *testing.T, d *Disk, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "ours.raw")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := d.CopyRaw(f); err != nil {
		t.Fatal(err)
	}
	if pos, _ := f.Seek(0, 1); pos != d.Size() {
		t.Errorf("CopyRaw left the file at %d, not at its end %d", pos, d.Size())
	}
	return out
}

// Fixed images and flat extents say every byte is data; the holes of their files are zeros all the
// same, and CopyRaw leaves them holes as qemu-img convert does (it asks the file with SEEK_DATA too).
func TestCopyRawKeepsFileHoles(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	b := make([]byte, 24<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 4 << 20 { // data, then 16 MiB of zeros, then data
		b[i] = byte(r.Uint32())
		b[len(b)-1-i] = byte(r.Uint32())
	}
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, fmt, opts string }{
		{"fixed.vhd", "vpc", "subformat=fixed,force_size=on"},
		{"static.vdi", "vdi", "static=on"},
		{"flat.vmdk", "vmdk", "subformat=monolithicFlat"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name)
			run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", c.fmt, "-o", c.opts, src, img)
			ref := qemuRaw(t, img, "-f", c.fmt)
			d, err := Open(img, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			out := copyRawTo(t, d, t.TempDir())
			sameFiles(t, out, ref)
			if got, want := allocatedBytes(t, out), allocatedBytes(t, ref); got > want+(1<<20) {
				t.Errorf("our copy takes %d bytes, qemu-img's %d: the image file's holes were written", got, want)
			}
		})
	}
}

// The file copier moves ranges of a file, skipping its holes, whether the kernel copies them
// (copy_file_range, sendfile) or they go through memory; a source that ends early is an error naming it.
func TestFileCopier(t *testing.T) {
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "src")
	b := make([]byte, 6<<20)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range b {
		if i < 2<<20 || i >= 4<<20 {
			b[i] = byte(r.Uint32())
		}
	}
	if err := os.WriteFile(srcPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Punch the zeros out of the file, so that the middle is a hole.
	src, err := os.OpenFile(srcPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const punch = 0x02 | 0x01 // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
	if err := syscall.Fallocate(int(src.Fd()), punch, 2<<20, 2<<20); err != nil {
		t.Logf("no hole punched (%v): copying data only", err)
	}
	for _, mode := range []struct{ noCFR, noSend bool }{{false, false}, {true, false}, {true, true}} {
		dstPath := filepath.Join(dir, "dst")
		dst, err := os.Create(dstPath)
		if err != nil {
			t.Fatal(err)
		}
		cp := &fileCopier{dst: dst}
		cp.noCFR, cp.noSend = mode.noCFR, mode.noSend
		// The file in three odd pieces, out of order, each to a shifted offset.
		const shift = 12345
		for _, p := range [][2]int64{{3<<20 + 7, 3<<20 - 7}, {0, 1<<20 + 1}, {1<<20 + 1, 2<<20 + 6}} {
			if err := cp.copyRange(src, p[0], p[0]+shift, p[1]); err != nil {
				t.Fatal(err)
			}
		}
		dst.Close()
		got, err := os.ReadFile(dstPath)
		if err != nil {
			t.Fatal(err)
		}
		want := append(make([]byte, shift), b...)
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: the copy differs from the source", mode)
		}
		other, err := os.Create(filepath.Join(dir, "other"))
		if err != nil {
			t.Fatal(err)
		}
		cp = &fileCopier{dst: other}
		cp.noCFR, cp.noSend = mode.noCFR, mode.noSend
		err = cp.copyRange(src, 6<<20-100, 0, 200)
		if err == nil || !strings.Contains(err.Error(), srcPath) {
			t.Errorf("%+v: a range past the end of the source: %v, want an error naming it", mode, err)
		}
		other.Close()
	}
}

// A copy reads compressed qcow2 clusters whole: each inflates straight into the caller's buffer, with
// no cluster-sized allocation (which would fault in fresh pages for every cluster), and matches qemu.
func TestQcow2WholeClusterReadsDoNotAllocate(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 8<<20)
	// The compressed clusters: those of the text pieces of sourceRaw (192 KiB, one in four).
	var offs []int64
	for p := int64(192 << 10); p < 8<<20; p += 4 * 192 << 10 {
		offs = append(offs, p, p+64<<10, p+128<<10)
	}
	for _, typ := range []string{"zlib", "zstd"} {
		img := filepath.Join(dir, typ+".qcow2")
		run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type="+typ, src, img)
		want, err := os.ReadFile(qemuRaw(t, img))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Open(img, Options{})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		read := func(off int64) {
			if _, err := d.ReadAt(buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
				t.Fatalf("%s: the cluster at %d reads differently from qemu-img's", typ, off)
			}
		}
		read(offs[0]) // pools and tables warmed
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, off := range offs[1:] { // each cluster once: none is in a cache
			read(off)
		}
		runtime.ReadMemStats(&after)
		// Under the race detector sync.Pool drops buffers on purpose: only the bytes are checked there.
		if per := (after.TotalAlloc - before.TotalAlloc) / uint64(len(offs)-1); per > 8<<10 && !raceOn {
			t.Errorf("%s: %d bytes allocated per whole-cluster read of 64 KiB", typ, per)
		}
		d.Close()
	}
}
