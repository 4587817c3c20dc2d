package vddk

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func fixture(t testing.TB, name string) string {
	return filepath.Join(testfix.RepoRoot(t), "testdata", "vddk", name)
}

// corpus returns the shared acceptance corpus folder, skipping when it is absent (CI has it).
func corpus(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(testfix.RepoRoot(t), "..", "shared", "acceptance", "corpus")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("acceptance corpus not present")
	}
	return dir
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed, and CI must have it", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// qemuRaw converts a disk with qemu-img (the independent reader) and returns the raw file's path.
func qemuRaw(t testing.TB, disk string, extra ...string) string {
	t.Helper()
	needTool(t, "qemu-img")
	out := filepath.Join(t.TempDir(), "qemu.raw")
	args := append([]string{"convert", "-O", "raw"}, extra...)
	args = append(args, disk, out)
	if b, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, b)
	}
	return out
}

// compareReads checks random ReadAt calls (from several goroutines at once) against want, including
// ranges that straddle grains and extents, plus every offset in hot.
func compareReads(t *testing.T, d *Disk, want *os.File, size int64, n int, hot []int64) {
	t.Helper()
	if d.Size() != size {
		t.Fatalf("size %d, want %d", d.Size(), size)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fails := 0
	check := func(r *rand.Rand, off int64, ln int) {
		if off >= size {
			return
		}
		ln = int(min(int64(ln), size-off))
		got := make([]byte, ln)
		exp := make([]byte, ln)
		if _, err := d.ReadAt(got, off); err != nil && !(err.Error() == "EOF" && off+int64(ln) == size) {
			mu.Lock()
			fails++
			mu.Unlock()
			t.Errorf("ReadAt(%d, %d): %v", off, ln, err)
			return
		}
		if _, err := want.ReadAt(exp, off); err != nil {
			t.Errorf("reference ReadAt(%d, %d): %v", off, ln, err)
			return
		}
		if !bytes.Equal(got, exp) {
			i := 0
			for i < ln && got[i] == exp[i] {
				i++
			}
			mu.Lock()
			fails++
			mu.Unlock()
			t.Errorf("ReadAt(%d, %d) differs from qemu at byte %d (%#x vs %#x)", off, ln, off+int64(i), got[i], exp[i])
		}
	}
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for range n / 8 {
				if fails > 5 {
					return
				}
				var off int64
				switch r.IntN(3) {
				case 0: // anywhere
					off = r.Int64N(size)
				case 1: // near a grain boundary
					off = r.Int64N(size/65536+1)*65536 - int64(r.IntN(1024))
				default: // near a hot spot (extent edges, writes)
					if len(hot) > 0 {
						off = hot[r.IntN(len(hot))] - int64(r.IntN(70000)) + 35000
					}
				}
				off = max(0, min(off, size-1))
				check(r, off, 1+r.IntN(200000))
			}
		})
	}
	wg.Wait()
	r := rand.New(rand.NewPCG(1, 2))
	for _, h := range hot {
		check(r, max(0, h-4096), 8192)
	}
}

// qemuMap returns the byte ranges qemu-img map reports as holding data that is not known to be zero
// (qemu marks holes of a flat file "data" and "zero" at once).
func qemuMap(t testing.TB, disk string) [][2]int64 {
	t.Helper()
	return qemuMapArgs(t, disk)
}

// openAndReadAll opens the disk at p (closed when the test ends) and reads all of it.
func openAndReadAll(t *testing.T, p string) (*Disk, []byte) {
	t.Helper()
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	return d, got
}
