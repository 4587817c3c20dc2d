package fusefs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
)

var long = flag.Bool("long", false, "run the soak for minutes instead of seconds")

// soakFigures are what a soak counts.
type soakFigures struct {
	reads, directReads, faultReads, walks, files, verified, eio, wrong, errs atomic.Int64
}

// soakRun is the shared state of the soak's workers.
type soakRun struct {
	t    *testing.T
	mnt  string
	want []byte
	img  soakImage
	stop atomic.Bool
	// gate: each read or file hash holds it shared; a heap sample holds it alone, so it measures a
	// quiet process (under load, go-fuse's buffer pool alone swings by hundreds of MiB).
	gate sync.RWMutex
	// walkersBehind counts walkers without a finished walk: the soak outlasts its time (up to
	// twice) until each has one, as a loaded machine can slow a full walk to seconds.
	walkersBehind atomic.Int64
	fig           soakFigures
	fails         atomic.Int64 // messages logged, to keep a broken run's log short
}

func (s *soakRun) fail(wrong bool, format string, args ...any) {
	if wrong {
		s.fig.wrong.Add(1)
	} else {
		s.fig.errs.Add(1)
	}
	if s.fails.Add(1) <= 20 {
		s.t.Errorf(format, args...)
	}
}

// alignedBuf is n bytes of page-aligned memory, as O_DIRECT wants.
func alignedBuf(n int) []byte {
	b := make([]byte, n+soakBlock)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (soakBlock - 1))
	return b[skip : skip+n]
}

// Soak: many readers at once for seconds (minutes with -long) on a generated disk whose content the
// kernel and qemu-img read independently: random reads of raw/disk through the page cache and with
// O_DIRECT (each one served by us), full walks hashing every file of an ext4 and a squashfs tree,
// and injected faults (a failing region of a raw file, a failing block under one file of a tree),
// each of which must reach its reader as EIO while every other read stays right. Goroutines and heap
// must not grow between the middle and the end of the load, and no goroutine may outlive it.
func TestSoak(t *testing.T) {
	needMounts(t)
	dir := t.TempDir()
	img := makeSoakImage(t, dir, *long)
	vmdk := filepath.Join(dir, "disk.vmdk")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", img.raw, vmdk)
	os.Remove(img.raw)
	wantPath := filepath.Join(dir, "want.raw")
	run(t, "qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, wantPath)
	want, err := os.ReadFile(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := vddk.Open(vmdk, vddk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	set, err := volumes.Open([]volumes.Disk{d}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	badRaw := &failingReader{data: want, badFrom: 5<<20 + 12345, badTo: 5<<20 + 12345 + 64<<10}
	l := &fusefs.Layout{Raw: []fusefs.RawSource{
		{Name: "disk", R: d, Size: d.Size()},
		{Name: "failing", R: badRaw, Size: badRaw.Size()},
	}}
	for _, v := range set.Volumes() {
		l.Raw = append(l.Raw, fusefs.RawSource{Name: v.ID, R: v, Size: v.Size()})
		tr, err := v.OpenTree(volumes.TreeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		l.Trees = append(l.Trees, fusefs.TreeSource{Name: v.ID, Tree: tr})
	}
	// "faulty": p1's tree again, read from a disk on which one block of the target file fails.
	badDisk := &failingReader{data: want, badFrom: img.targetOff, badTo: img.targetOff + soakBlock}
	fset, err := volumes.Open([]volumes.Disk{badDisk}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fv, ok := fset.Volume("p1")
	if !ok {
		t.Fatal("no p1 on the failing disk")
	}
	ftr, err := fv.OpenTree(volumes.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ftr.Close()
	l.Trees = append(l.Trees, fusefs.TreeSource{Name: "faulty", Tree: ftr})
	if badDisk.faults.Load() != 0 {
		t.Fatal("opening the tree read the failing block: the fault would not be one file's")
	}

	s := &soakRun{t: t, mnt: filepath.Join(dir, "mnt"), want: want, img: img}
	os.Mkdir(s.mnt, 0o755)
	srv, err := fusefs.Mount(s.mnt, l, fusefs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()

	dur := 8 * time.Second
	if *long {
		dur = 4 * time.Minute
	}
	type sample struct {
		goroutines int
		heap       uint64
	}
	snapshot := func() sample {
		s.gate.Lock()
		defer s.gate.Unlock()
		// Twice: buffers in go-fuse's sync.Pool survive one collection (in its victim cache).
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return sample{runtime.NumGoroutine(), m.HeapInuse}
	}
	before := snapshot()
	var mid, late sample
	// Readers of each kind; -long doubles them (CI's short run on two cores must still finish walks).
	scale := 1
	if *long {
		scale = 2
	}
	var wg sync.WaitGroup
	for w := range 8 * scale {
		// Every fourth reads raw/p1, the ext4 partition sfdisk placed at p1Start.
		if w%4 == 3 {
			wg.Go(func() { s.rawReader(uint64(w), false, "p1", s.want[p1Start:p1Start+p1Size]) })
		} else {
			wg.Go(func() { s.rawReader(uint64(w), false, "disk", s.want) })
		}
	}
	for w := range 4 * scale {
		wg.Go(func() { s.rawReader(uint64(100+w), true, "disk", s.want) })
	}
	for w := range 2 * scale {
		wg.Go(func() { s.faultReader(uint64(200+w), badRaw.badFrom, badRaw.badTo) })
	}
	s.walkersBehind.Store(int64(2*scale + 2))
	for w := range 2 * scale {
		wg.Go(func() { s.walker([]string{"p1", "p2"}, w%2 == 1) })
	}
	for w := range 2 {
		wg.Go(func() { s.walker([]string{"faulty"}, w%2 == 1) })
	}
	start := time.Now()
	time.Sleep(dur / 2)
	mid = snapshot()
	time.Sleep(dur/2 - dur/10)
	late = snapshot()
	time.Sleep(dur / 10)
	for s.walkersBehind.Load() > 0 && time.Since(start) < 2*dur {
		time.Sleep(100 * time.Millisecond)
	}
	ran := time.Since(start).Round(time.Second)
	s.stop.Store(true)
	wg.Wait()
	after := snapshot()

	f := &s.fig
	faults := badRaw.faults.Load() + badDisk.faults.Load()
	t.Logf("soak %v: %d reads (%d buffered, %d O_DIRECT) of raw/disk and raw/p1, %d reads around a failing region, %d walks hashing %d files; "+
		"%d MiB verified; %d faults injected, %d EIO seen by readers; %d wrong results (losses), %d other errors; "+
		"goroutines %d before, %d mid, %d late, %d after; heap %d KiB before, %d mid, %d late, %d after",
		ran, f.reads.Load()+f.directReads.Load(), f.reads.Load(), f.directReads.Load(), f.faultReads.Load(), f.walks.Load(), f.files.Load(),
		f.verified.Load()>>20, faults, f.eio.Load(), f.wrong.Load(), f.errs.Load(),
		before.goroutines, mid.goroutines, late.goroutines, after.goroutines, before.heap>>10, mid.heap>>10, late.heap>>10, after.heap>>10)
	if f.reads.Load() == 0 || f.directReads.Load() == 0 || f.faultReads.Load() == 0 || f.walks.Load() == 0 {
		t.Error("some kind of load did not run")
	}
	if f.eio.Load() == 0 || faults < f.eio.Load() {
		t.Errorf("%d faults injected but %d EIO seen: every EIO needs a fault, and some must be seen", faults, f.eio.Load())
	}
	if late.goroutines > mid.goroutines+8 {
		t.Errorf("goroutines grew under load from %d to %d", mid.goroutines, late.goroutines)
	}
	if after.goroutines > before.goroutines+4 {
		t.Errorf("%d goroutines before the load, %d after it", before.goroutines, after.goroutines)
	}
	if late.heap > mid.heap+mid.heap/2+(16<<20) {
		t.Errorf("heap grew under load from %d to %d KiB", mid.heap>>10, late.heap>>10)
	}
}

// rawReader reads random ranges of a raw file and checks each byte against want; direct ones use
// O_DIRECT, so each read reaches the daemon instead of the kernel's page cache.
func (s *soakRun) rawReader(seed uint64, direct bool, name string, want []byte) {
	flags := os.O_RDONLY
	if direct {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(filepath.Join(s.mnt, "raw", name), flags, 0)
	if err != nil {
		s.fail(false, "open raw/%s: %v", name, err)
		return
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, 7))
	buf := alignedBuf(1 << 20)
	size := int64(len(want))
	for !s.stop.Load() {
		var off int64
		var n int
		if direct {
			off = r.Int64N(size/soakBlock) * soakBlock
			n = soakBlock * (1 + r.IntN(256))
		} else {
			off = r.Int64N(size)
			n = 1 + r.IntN(256<<10)
		}
		n = int(min(int64(n), size-off))
		s.gate.RLock()
		k, err := f.ReadAt(buf[:n], off)
		s.gate.RUnlock()
		if err != nil || k != n {
			s.fail(false, "read %d at %d of raw/%s (direct %v): %d, %v", n, off, name, direct, k, err)
			return
		}
		if !bytes.Equal(buf[:k], want[off:off+int64(k)]) {
			s.fail(true, "wrong bytes in %d at %d of raw/%s (direct %v)", n, off, name, direct)
			return
		}
		s.fig.verified.Add(int64(k))
		if direct {
			s.fig.directReads.Add(1)
		} else {
			s.fig.reads.Add(1)
		}
	}
}

// faultReader reads (O_DIRECT) around the failing region of raw/failing: a read that touches it must
// fail with EIO, having returned only right bytes before it; any other read must succeed and be right.
func (s *soakRun) faultReader(seed uint64, badFrom, badTo int64) {
	f, err := os.OpenFile(filepath.Join(s.mnt, "raw", "failing"), os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		s.fail(false, "open raw/failing: %v", err)
		return
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, 9))
	buf := alignedBuf(256 << 10)
	from := (badFrom - 1<<20) &^ (soakBlock - 1)
	for !s.stop.Load() {
		off := from + r.Int64N((badTo+1<<20-from)/soakBlock)*soakBlock
		n := soakBlock * (1 + r.IntN(64))
		s.gate.RLock()
		k, err := f.ReadAt(buf[:n], off)
		s.gate.RUnlock()
		touches := off < badTo && off+int64(n) > badFrom
		switch {
		case !bytes.Equal(buf[:k], s.want[off:off+int64(k)]):
			s.fail(true, "wrong bytes in %d at %d of raw/failing", n, off)
			return
		case touches && !errors.Is(err, syscall.EIO):
			s.fail(false, "read %d at %d over the failing region: %d bytes, %v; want EIO", n, off, k, err)
			return
		case touches && k > 0 && off+int64(k) > badFrom:
			s.fail(true, "read %d at %d returned %d bytes, past the failing region's start %d", n, off, k, badFrom)
			return
		case touches:
			s.fig.eio.Add(1)
		case err != nil || k != n:
			s.fail(false, "read %d at %d beside the failing region: %d, %v", n, off, k, err)
			return
		}
		s.fig.verified.Add(int64(k))
		s.fig.faultReads.Add(1)
	}
}

var errStopped = errors.New("the soak is over")

// walker walks trees (mount folder names) and hashes every file against the kernel's reading, again
// and again. Under "faulty" (p1 with a failing block) the target file must fail with EIO.
func (s *soakRun) walker(trees []string, direct bool) {
	buf := alignedBuf(1 << 20)
	counted := false
	for !s.stop.Load() {
		seen, expected := 0, 0
		for _, tree := range trees {
			kernelID := tree
			if tree == "faulty" {
				kernelID = "p1"
			}
			for k := range s.img.sums {
				if strings.HasPrefix(k, kernelID+"/") {
					expected++
				}
			}
			root := filepath.Join(s.mnt, tree)
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				if s.stop.Load() {
					return errStopped
				}
				rel, _ := filepath.Rel(root, p)
				key := filepath.Join(kernelID, rel)
				sum, ok := s.img.sums[key]
				if !ok {
					return fmt.Errorf("%s: a file the kernel does not show", key)
				}
				seen++
				s.gate.RLock()
				got, n, err := hashFile(p, direct, buf)
				s.gate.RUnlock()
				if tree == "faulty" && rel == s.img.target {
					if !errors.Is(err, syscall.EIO) {
						return fmt.Errorf("%s over a failing block: %v, want EIO", p, err)
					}
					s.fig.eio.Add(1)
					return nil
				}
				if err != nil {
					return err
				}
				if got != sum {
					s.fig.wrong.Add(1)
					return fmt.Errorf("%s: wrong content (direct %v)", p, direct)
				}
				s.fig.verified.Add(n)
				s.fig.files.Add(1)
				return nil
			})
			if errors.Is(err, errStopped) {
				return // an unfinished walk is not counted
			}
			if err != nil {
				s.fail(false, "walk of %s: %v", tree, err)
				return
			}
		}
		if seen != expected {
			s.fail(false, "walk of %v found %d of the kernel's %d files", trees, seen, expected)
			return
		}
		if s.fig.walks.Add(1); !counted {
			s.walkersBehind.Add(-1)
			counted = true
		}
	}
}

// hashFile reads a whole file (with O_DIRECT when direct) and returns its SHA-256 and length.
func hashFile(p string, direct bool, buf []byte) ([32]byte, int64, error) {
	flags := os.O_RDONLY
	if direct {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(p, flags, 0)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, err
}
