package ext4

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/memlimit"
	"github.com/vmdkmount/vmdkmount/internal/testfix"
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
	img := testfix.BigDirImage(t)
	f := openImage(t, img)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	want := make(map[string]bool, testfix.BigDirEntries) // made before the baseline: marking it allocates nothing
	for i := range testfix.BigDirEntries {
		want[testfix.BigDirName(i)] = true
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
		if held == 0 && count >= testfix.BigDirEntries/2 {
			held = max(heap(), base) - base
		}
	}
	s.Close()
	if count != testfix.BigDirEntries {
		t.Fatalf("streamed %d names, want %d", count, testfix.BigDirEntries)
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

// repeatedBlockDirImage is testfix.RepeatedBlockDirImage, checked to map d by blocks (not extents).
func repeatedBlockDirImage(t *testing.T, distinct bool) string {
	t.Helper()
	img := testfix.RepeatedBlockDirImage(t, distinct)
	if in := in0(t, openImage(t, img), "d"); in.flags&flagExtents != 0 {
		t.Fatal("d is extent-mapped")
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
		if want := testfix.RepeatedBlockDirEntries; len(ents) != want || len(streamed) != want {
			t.Errorf("listed %d and streamed %d entries, want %d", len(ents), len(streamed), want)
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
