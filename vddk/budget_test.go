package vddk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/memlimit"
	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// openBounded opens path and reads it a little, failing t past the time and allocation bounds.
func openBounded(t *testing.T, path string, timeout time.Duration, allocBound uint64) (*Disk, error) {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	d, err := Open(path, Options{})
	if err == nil {
		buf := make([]byte, 64<<10)
		for _, off := range []int64{0, d.Size() / 2, d.Size() - int64(len(buf))} {
			if _, err := d.ReadAt(buf, max(0, off)); err != nil {
				t.Errorf("read at %d: %v", off, err)
			}
		}
		d.AllocatedBlocks(0, uint64(min(d.Size(), 1<<30)/SectorSize), 128)
		_ = d.Info()
	}
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	a := after.TotalAlloc - before.TotalAlloc
	t.Logf("open and reads: %v, %d MiB allocated", el.Round(time.Millisecond), a>>20)
	if el > timeout {
		t.Errorf("took %v (bound %v)", el, timeout)
	}
	if a > allocBound {
		t.Errorf("allocated %d MiB (bound %d MiB)", a>>20, allocBound>>20)
	}
	return d, err
}

// The memory bomb of a descriptor whose 4,096 SPARSE lines all name one file with a 32 MiB grain
// directory: the directory is loaded once for the file, not once per line (128 GiB).
func TestHostileManyLinesOneFile(t *testing.T) {
	defer memlimit.ReportChildPeak()
	dir := t.TempDir()
	testfix.SparseGrainDirFile(t, filepath.Join(dir, "big.vmdk"), 8<<20)
	lines := make([]string, maxExtents)
	for i := range lines {
		lines[i] = `RW 1048576 SPARSE "big.vmdk"`
	}
	desc := filepath.Join(dir, "bomb.vmdk")
	if err := os.WriteFile(desc, []byte(testfix.ManyLinesDescriptor("monolithicSparse", lines)), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := openBounded(t, desc, 20*time.Second, 96<<20)
	if err != nil {
		t.Fatalf("a descriptor naming one file 4096 times is valid: %v", err)
	}
	defer d.Close()
	if d.Size() != maxExtents<<29 {
		t.Errorf("size %d", d.Size())
	}
}

// Grain directories of distinct files are charged to one budget per disk: past it the open fails,
// naming the file, instead of loading each.
func TestHostileGrainDirectoryBudget(t *testing.T) {
	defer memlimit.ReportChildPeak()
	dir := t.TempDir()
	var lines []string
	for i := range 6 {
		name := fmt.Sprintf("big%d.vmdk", i)
		testfix.SparseGrainDirFile(t, filepath.Join(dir, name), 8<<20) // 32 MiB each
		lines = append(lines, fmt.Sprintf(`RW 1048576 SPARSE %q`, name))
	}
	desc := filepath.Join(dir, "bomb.vmdk")
	if err := os.WriteFile(desc, []byte(testfix.ManyLinesDescriptor("custom", lines)), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := openBounded(t, desc, 20*time.Second, maxGDBytesPerDisk+(32<<20))
	if err == nil {
		d.Close()
		t.Fatalf("opened %d MiB of grain directories", 6*32)
	}
	if !strings.Contains(err.Error(), "big") || !strings.Contains(err.Error(), "grain directories past") {
		t.Errorf("error does not name the file and the budget: %v", err)
	}
	t.Log(err)
}

func TestHostileManyLinesUnderMemoryLimit(t *testing.T) {
	memlimit.RunUnderMemoryLimit(t, "TestHostileManyLinesOneFile", 256<<20, 2*time.Minute)
	memlimit.RunUnderMemoryLimit(t, "TestHostileGrainDirectoryBudget", hostileMemoryLimit, 2*time.Minute) // 128 MiB charged before the refusal
}

// Lines sharing one file read what qemu-img reads from the same descriptor (it opens each line on its
// own), for plain and zeroed-grain files, with two files interleaved.
func TestLinesSharingAFileMatchQemu(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"plain", "zeroed"} {
		if err := os.WriteFile(filepath.Join(dir, v+".vmdk"), tinySparse(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	for i := range 16 {
		lines = append(lines, fmt.Sprintf(`RW 256 SPARSE %q`, []string{"plain", "zeroed"}[i%3%2]+".vmdk"))
	}
	desc := filepath.Join(dir, "shared.vmdk")
	if err := os.WriteFile(desc, []byte(testfix.ManyLinesDescriptor("twoGbMaxExtentSparse", lines)), 0o644); err != nil {
		t.Fatal(err)
	}
	d, got := openAndReadAll(t, desc)
	want, err := os.ReadFile(qemuRaw(t, desc))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || bytes.Count(got, []byte{0}) == len(got) {
		t.Errorf("reads differ from qemu-img's (%d bytes, %d of them zero)", len(got), bytes.Count(got, []byte{0}))
	}
	first := d.links[0].exts[0].(*grainExtent)
	if third := d.links[0].exts[2].(*grainExtent); third.m != first.m {
		t.Error("two lines naming plain.vmdk loaded it twice")
	}
}

// FuzzDescriptorExtents fuzzes descriptor files whose extent lines name a few real files beside them
// (sparse, stream-optimized, COWD, flat), many times over: whatever the lines, the files' tables are
// loaded once and the open stays within its budgets.
func FuzzDescriptorExtents(f *testing.F) {
	work := fuzzWorkDir(f)
	for _, v := range []string{"plain", "stream"} {
		if err := os.WriteFile(filepath.Join(work, v+".vmdk"), tinySparse(v), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	writeCOWD(f, filepath.Join(work, "cowd"), 2048, 1, []esxGrainWrite{{grain: 0, data: make([]byte, 512)}})
	if err := os.WriteFile(filepath.Join(work, "flat.bin"), bytes.Repeat([]byte("flat"), 2048), 0o644); err != nil {
		f.Fatal(err)
	}
	rep := func(line string, n int) []string {
		l := make([]string, n)
		for i := range l {
			l[i] = line
		}
		return l
	}
	// 512 lines on one file (the 4,096-line case is TestHostileManyLinesOneFile: an input that large
	// stalls the fuzz engine's mutator).
	f.Add(testfix.ManyLinesDescriptor("monolithicSparse", rep(`RW 256 SPARSE "plain.vmdk"`, 512)))
	f.Add(testfix.ManyLinesDescriptor("streamOptimized", rep(`RW 256 SPARSE "stream.vmdk"`, 64)))
	f.Add(testfix.ManyLinesDescriptor("vmfsSparse", rep(`RW 2048 VMFSSPARSE "cowd"`, 300)))
	f.Add(testfix.ManyLinesDescriptor("custom", []string{`RW 256 SPARSE "plain.vmdk"`, `RDONLY 16 FLAT "flat.bin" 0`, `RW 256 SPARSE "stream.vmdk"`,
		`RW 8 ZERO`, `RW 2048 VMFSSPARSE "cowd"`, `NOACCESS 8 SPARSE "plain.vmdk"`, `RW 256 SPARSE "plain.vmdk"`}))
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(work, "fuzz.vmdk")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzOpenAndRead(t, p, 64<<10)
	})
}

// Stream-optimized files share one cache of inflated grains per disk: two lines naming one stream file
// read what qemu-img reads from the file, twice over, through one inflater.
func TestStreamLinesShareGrainCache(t *testing.T) {
	dir := t.TempDir()
	stream := filepath.Join(dir, "stream.vmdk")
	if err := os.WriteFile(stream, tinySparse("stream"), 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := os.ReadFile(qemuRaw(t, stream))
	if err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(dir, "twice.vmdk")
	lines := []string{`RW 256 SPARSE "stream.vmdk"`, `RW 256 SPARSE "stream.vmdk"`}
	if err := os.WriteFile(desc, []byte(testfix.ManyLinesDescriptor("streamOptimized", lines)), 0o644); err != nil {
		t.Fatal(err)
	}
	d, got := openAndReadAll(t, desc)
	if want := append(bytes.Clone(one), one...); !bytes.Equal(got, want) || bytes.Count(one, []byte{0}) == len(one) {
		t.Errorf("reads differ from qemu-img's of the file, twice (%d bytes)", len(got))
	}
	a, b := d.links[0].exts[0].(*grainExtent), d.links[0].exts[1].(*grainExtent)
	if a.inflater == nil || a.inflater != b.inflater || a.inflater.cache == nil {
		t.Error("the two lines do not share one inflater and its cache")
	}
}
