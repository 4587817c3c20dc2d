package fusefs_test

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
)

var long = flag.Bool("long", false, "run the load test for minutes instead of seconds")

// 32 readers at random offsets of raw/disk and scanners walking and hashing every tree, together:
// no error, no wrong byte, and no growth of goroutines or heap over the run.
func TestLoad(t *testing.T) {
	needMounts(t)
	c := corpus(t)
	dir := t.TempDir()
	raw := filepath.Join(c, "dfvfs", "mbr.raw")
	vmdk := filepath.Join(dir, "mbr.vmdk")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	want, _ := os.ReadFile(raw)
	d, err := vddk.Open(vmdk, vddk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	set, err := volumes.Open([]volumes.Disk{d}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &fusefs.Layout{Raw: []fusefs.RawSource{{Name: "disk", R: d, Size: d.Size()}}}
	// Expected tree contents: the kernel's loop mounts of the same partitions.
	expect := map[string][32]byte{}
	for _, v := range set.Volumes() {
		tr, err := v.OpenTree(volumes.TreeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		l.Trees = append(l.Trees, fusefs.TreeSource{Name: v.ID, Tree: tr})
		k := filepath.Join(dir, "k-"+v.ID)
		os.Mkdir(k, 0o755)
		run(t, "mount", "-o", fmt.Sprintf("loop,ro,noatime,offset=%d,sizelimit=%d", v.Offset, v.Size()), raw, k)
		filepath.Walk(k, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(k, p)
				expect[filepath.Join(v.ID, rel)] = sha256.Sum256(b)
			}
			return nil
		})
		run(t, "umount", k)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	srv, err := fusefs.Mount(mnt, l, fusefs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()

	dur := 8 * time.Second
	if *long {
		dur = 3 * time.Minute
	}
	var reads, walks, bytesOK, failures atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	snapshot := func() (int, uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapInuse
	}
	var midG int
	var midHeap uint64
	var midOnce sync.Once
	for w := range 32 {
		wg.Go(func() {
			f, err := os.Open(filepath.Join(mnt, "raw", "disk"))
			if err != nil {
				t.Error(err)
				failures.Add(1)
				return
			}
			defer f.Close()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			buf := make([]byte, 256<<10)
			for time.Now().Before(stop) {
				off := r.Int64N(int64(len(want)))
				n := 1 + r.IntN(len(buf))
				k, err := f.ReadAt(buf[:n], off)
				if err != nil && k != int(min(int64(n), int64(len(want))-off)) {
					failures.Add(1)
					t.Errorf("read %d at %d: %v", n, off, err)
					return
				}
				if !bytes.Equal(buf[:k], want[off:off+int64(k)]) {
					failures.Add(1)
					t.Errorf("wrong bytes at %d", off)
					return
				}
				reads.Add(1)
				bytesOK.Add(int64(k))
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				seen := 0
				err := filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
					if err != nil {
						return err
					}
					rel, _ := filepath.Rel(mnt, p)
					if sum, ok := expect[rel]; ok {
						b, err := os.ReadFile(p)
						if err != nil || sha256.Sum256(b) != sum {
							return fmt.Errorf("%s: %v or wrong content", rel, err)
						}
						seen++
					}
					return nil
				})
				if err != nil || seen != len(expect) {
					failures.Add(1)
					t.Errorf("walk: %v (%d of %d files)", err, seen, len(expect))
					return
				}
				walks.Add(1)
				if time.Until(stop) < dur/2 {
					midOnce.Do(func() { midG, midHeap = snapshot() })
				}
			}
		})
	}
	wg.Wait()
	endG, endHeap := snapshot()
	t.Logf("%d random reads (%d MiB verified), %d full walks in %v, %d failures; goroutines %d→%d, heap %d→%d KiB",
		reads.Load(), bytesOK.Load()>>20, walks.Load(), dur, failures.Load(), midG, endG, midHeap>>10, endHeap>>10)
	if reads.Load() == 0 || walks.Load() == 0 {
		t.Error("the load did not run")
	}
	if endG > midG+8 {
		t.Errorf("goroutines grew from %d to %d", midG, endG)
	}
	if endHeap > midHeap*2+(8<<20) {
		t.Errorf("heap grew from %d to %d KiB", midHeap>>10, endHeap>>10)
	}
}
