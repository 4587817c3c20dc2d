package ext4

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/memlimit"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// streamAll lists a directory through OpenDirStream in batches of n.
func streamAll(t testing.TB, f *FS, name string, n int) []string {
	t.Helper()
	names, err := treecmp.StreamNames(f, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Every directory of every fixture streams the names ReadDir lists, whatever the batch size, and a
// stream resumed at any entry's cookie gives the rest of the listing.
func TestDirStreamMatchesReadDir(t *testing.T) {
	for _, gz := range fixtures(t) {
		dirs, diffs := treecmp.CompareStreams(openImage(t, gunzipTemp(t, gz)))
		for _, d := range diffs {
			t.Errorf("%s: %s", filepath.Base(gz), d)
		}
		if dirs < 3 {
			t.Errorf("%s: only %d directories", gz, dirs)
		}
	}
}

// Streaming a 100,000-entry directory holds about one block of it, where ReadDir holds all of it.
func TestDirStreamHugeDirectoryMemory(t *testing.T) {
	img := makeBigDirImage(t)
	f := openImage(t, img)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	want := make(map[string]bool, bigDirEntries) // made before the baseline: marking it allocates nothing
	for i := range bigDirEntries {
		want[bigName(i)] = true
	}
	base := heap()
	s, err := f.OpenDirStream("big")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	var held uint64
	for cookie := uint64(0); ; {
		batch, err := s.ReadDirAt(cookie, 256)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			if want[e.Name()] {
				want[e.Name()] = false
				count++
			}
			cookie = e.Next
		}
		if held == 0 && count >= bigDirEntries/2 {
			held = max(heap(), base) - base
		}
	}
	s.Close()
	if count != bigDirEntries {
		t.Fatalf("streamed %d names, want %d", count, bigDirEntries)
	}
	base = heap()
	ents, _ := f.ReadDir("big")
	whole := heap() - base
	runtime.KeepAlive(ents)
	t.Logf("heap held mid-stream: %d KiB; by ReadDir: %d KiB", held>>10, whole>>10)
	if held > 1<<20 || held > whole/8 {
		t.Errorf("the stream held %d KiB mid-way (the whole listing: %d KiB)", held>>10, whole>>10)
	}
}

// repeatedBlockDirImage builds a 4 GiB-class sparse ext3-layout image (block maps) whose directory d's
// single-indirect block points 1,024 times at d's one data block, and whose double-indirect block
// points 1,024 times at that indirect block: a directory of a million blocks that are all one.
//
// With distinct, the double-indirect block points at 1,024 distinct indirect blocks instead, each
// pointing 1,024 times at the data block: no indirect block repeats, the data block does.
func repeatedBlockDirImage(t *testing.T, distinct bool) string {
	t.Helper()
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src", "d")
	os.MkdirAll(src, 0o755)
	for i := range 50 {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("file-%02d", i)), nil, 0o644)
	}
	img := filepath.Join(tmp, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-N", "256",
		"-O", "^extent,^64bit,^flex_bg,^has_journal,^dir_index,^metadata_csum,^resize_inode", "-E", "lazy_itable_init=1",
		"-d", filepath.Join(tmp, "src"), img, "4200M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	f := openImage(t, img)
	in := in0(t, f, "d")
	if in.flags&flagExtents != 0 {
		t.Fatal("d is extent-mapped")
	}
	data := binary.LittleEndian.Uint32(in.block[:])
	ind, dind := uint32(f.volumeBlocks()-2), uint32(f.volumeBlocks()-3)
	h, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(at uint32, ptr func(i int) uint32) {
		blk := make([]byte, 4096)
		for i := range 1024 {
			binary.LittleEndian.PutUint32(blk[4*i:], ptr(i))
		}
		if _, err := h.WriteAt(blk, int64(at)*4096); err != nil {
			t.Fatal(err)
		}
	}
	fill(ind, func(int) uint32 { return data })
	fill(dind, func(int) uint32 { return ind })
	if distinct {
		// Indirect blocks at the end of the volume, below dind.
		fill(dind, func(i int) uint32 { return dind - 1 - uint32(i) })
		for i := range 1024 {
			fill(dind-1-uint32(i), func(int) uint32 { return data })
		}
	}
	h.Close()
	size := uint64(1<<32 - 4096)
	for _, cmd := range []string{fmt.Sprintf("sif d block[IND] %d", ind), fmt.Sprintf("sif d block[DIND] %d", dind), fmt.Sprintf("sif d size %d", size)} {
		if out, err := exec.Command("debugfs", "-w", "-R", cmd, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v: %s", cmd, err, out)
		}
	}
	return img
}

// A block-mapped directory whose indirect blocks all point at one block lists its 50 entries once,
// quickly and in bounded memory, by ReadDir and by the stream; so does one whose distinct indirect
// blocks all point at one data block.
func TestRepeatedBlockDirectory(t *testing.T) {
	defer memlimit.ReportChildPeak()
	for _, distinct := range []bool{false, true} {
		img := repeatedBlockDirImage(t, distinct)
		f := openImage(t, img)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		ents, err := f.ReadDir("d")
		if err != nil {
			t.Fatal(err)
		}
		streamed := streamAll(t, f, "d", 64)
		el := time.Since(start)
		runtime.ReadMemStats(&after)
		a := after.TotalAlloc - before.TotalAlloc
		t.Logf("distinct indirect blocks %v: listed %d and streamed %d entries in %v, %d MiB allocated", distinct, len(ents), len(streamed), el.Round(time.Millisecond), a>>20)
		if len(ents) != 50 || len(streamed) != 50 {
			t.Errorf("listed %d and streamed %d entries, want 50", len(ents), len(streamed))
		}
		if el > 20*time.Second {
			t.Errorf("listing took %v", el)
		}
		if a > 512<<20 {
			t.Errorf("listing allocated %d MiB", a>>20)
		}
		f.Close()
	}
}

func TestRepeatedBlockDirectoryUnderMemoryLimit(t *testing.T) {
	memlimit.RunUnderMemoryLimit(t, "TestRepeatedBlockDirectory", 256<<20, 2*time.Minute)
}
