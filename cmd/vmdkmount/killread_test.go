package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// kernelSums hashes every regular file of each Linux partition of a raw image, read through the
// kernel's loop mount, keyed by "p<N>/path" as vmdkmount names the volumes.
func kernelSums(t *testing.T, raw string) map[string][32]byte {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", raw).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var table struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Node        string
				Start, Size int64
				Type        string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	sums := map[string][32]byte{}
	for _, p := range table.PartitionTable.Partitions {
		if p.Type != "83" {
			continue
		}
		id := "p" + p.Node[strings.LastIndexAny(p.Node, "abcdefghijklmnopqrstuvwxyz.")+1:]
		k := filepath.Join(t.TempDir(), "kernel")
		os.Mkdir(k, 0o755)
		ss := table.PartitionTable.SectorSize
		if out, err := exec.Command("mount", "-o", fmt.Sprintf("loop,ro,noatime,offset=%d,sizelimit=%d", p.Start*ss, p.Size*ss), raw, k).CombinedOutput(); err != nil {
			t.Fatalf("loop mount of %s: %v\n%s", id, err, out)
		}
		err := filepath.WalkDir(k, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			rel, _ := filepath.Rel(k, path)
			sums[filepath.Join(id, rel)] = sha256.Sum256(b)
			return err
		})
		testfix.Unmount(t, k)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(sums) == 0 {
		t.Fatal("the kernel found no files")
	}
	return sums
}

// alignedBuf is n bytes of page-aligned memory, as O_DIRECT wants.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
	return b[skip : skip+n]
}

// checkTree walks a mount and hashes every file the kernel's mount holds: nil when all match.
func checkTree(mnt string, want map[string][32]byte) error {
	seen := 0
	err := filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		if sum, ok := want[rel]; ok {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if sha256.Sum256(b) != sum {
				return fmt.Errorf("%s: wrong content", rel)
			}
			seen++
		}
		return nil
	})
	if err == nil && seen != len(want) {
		err = fmt.Errorf("%d of %d files found", seen, len(want))
	}
	return err
}

// SIGKILL of the daemon at random moments while readers run on raw files and trees: every byte read
// before the kill is right, every reader returns (an error, not a hang), umount clears the dead mount,
// the disk is unchanged, and a new mount reads everything right.
func TestKillDuringReads(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	if os.Geteuid() != 0 {
		t.Skip("the expected trees come from loop mounts, which need root")
	}
	for _, tool := range []string{"qemu-img", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(c, "dfvfs", "mbr.raw")
	disk := filepath.Join(dir, "mbr.vmdk")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	want := qemuRaw(t, disk, filepath.Join(dir, "want.raw"))
	sums := kernelSums(t, src)
	before := sum(t, disk)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	rounds := 3
	if *long {
		rounds = 30
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	var totalReads, totalWalks, totalBytes, totalWrong int64
	for round := range rounds {
		d := startDaemon(t, bin, mnt, disk, mnt)
		var killed, stop atomic.Bool
		var reads, walks, verified, wrong atomic.Int64
		var mu sync.Mutex
		var early []error // failures before the kill
		fail := func(err error) {
			if !killed.Load() {
				mu.Lock()
				early = append(early, err)
				mu.Unlock()
			}
		}
		var wg sync.WaitGroup
		for r := range 6 {
			wg.Go(func() {
				// Half read with O_DIRECT, so requests are in flight in the daemon when it dies.
				direct := r%2 == 1
				flags := os.O_RDONLY
				if direct {
					flags |= syscall.O_DIRECT
				}
				f, err := os.OpenFile(filepath.Join(mnt, "raw", "disk"), flags, 0)
				if err != nil {
					fail(err)
					return
				}
				defer f.Close()
				rr := rand.New(rand.NewPCG(seed, uint64(round*10+r)))
				buf := alignedBuf(128 << 10)
				for !stop.Load() { // reads of pages the kernel cached still succeed after the kill
					off := rr.Int64N(int64(len(want)))
					size := 1 + rr.IntN(len(buf))
					if direct {
						off, size = off&^4095, (size+4095)&^4095
					}
					n, err := f.ReadAt(buf[:size], off)
					if bytes.Equal(buf[:n], want[off:off+int64(n)]) {
						verified.Add(int64(n))
					} else {
						wrong.Add(1)
					}
					if err != nil && off+int64(n) < int64(len(want)) {
						fail(err)
						return
					}
					reads.Add(1)
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				for !stop.Load() {
					if err := checkTree(mnt, sums); err != nil {
						if strings.Contains(err.Error(), "wrong content") {
							wrong.Add(1)
						}
						fail(err)
						return
					}
					walks.Add(1)
				}
			})
		}
		delay := time.Duration(100+rnd.IntN(900)) * time.Millisecond
		time.Sleep(delay)
		killed.Store(true)
		d.kill()
		time.Sleep(200 * time.Millisecond)
		stop.Store(true)
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("readers still blocked 20 s after the daemon was killed")
		}
		t.Logf("round %d: killed after %v: %d reads (%d KiB), %d walks, %d wrong", round, delay, reads.Load(), verified.Load()>>10, walks.Load(), wrong.Load())
		if wrong.Load() != 0 || len(early) != 0 {
			t.Errorf("round %d: %d wrong reads; failures before the kill: %v", round, wrong.Load(), errors.Join(early...))
		}
		if reads.Load() == 0 {
			t.Errorf("round %d: nothing was read before the kill", round)
		}
		totalReads, totalWalks, totalBytes = totalReads+reads.Load(), totalWalks+walks.Load(), totalBytes+verified.Load()
		totalWrong += wrong.Load()
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil || isMounted(mnt) {
			t.Fatalf("umount after kill: %v\n%s", err, out)
		}
		if sum(t, disk) != before {
			t.Fatal("the disk changed")
		}
		// A new mount (the usual background one) serves everything right.
		if out, err := exec.Command(bin, disk, mnt).CombinedOutput(); err != nil {
			t.Fatalf("round %d: new mount: %v\n%s", round, err, out)
		}
		got, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("round %d: raw/disk of the new mount: %v or wrong bytes", round, err)
		}
		if err := checkTree(mnt, sums); err != nil {
			t.Errorf("round %d: trees of the new mount: %v", round, err)
		}
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v\n%s", err, out)
		}
	}
	t.Logf("%d kills: %d reads (%d MiB verified), %d full walks, %d wrong reads", rounds, totalReads, totalBytes>>20, totalWalks, totalWrong)
}
