package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/vddk"
)

const blockSize = 4096 // the unit in which a write interrupted by the kill may land or not

// writeOp is one write to raw/disk; its bytes follow from its seed.
type writeOp struct {
	off  int64
	n    int
	seed uint64
}

func (w writeOp) fill(buf []byte) {
	r := rand.New(rand.NewPCG(w.seed, uint64(w.off)))
	for i := 0; i+8 <= len(buf); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
}

// writerLog is what one writer knows: every acknowledged write, which of them each block holds last,
// and the write in flight when the daemon died (it may have landed in part).
type writerLog struct {
	acked   []writeOp
	last    map[int64]int // block → index in acked
	pending *writeOp
	err     error
	errAt   time.Time
}

// runWriter writes random patterns to [from, to) of raw/disk until a write fails, recording each write
// the kernel acknowledged: with O_DIRECT once pwrite returns, otherwise once fsync after it returns.
func runWriter(path string, from, to int64, direct bool, seed uint64, acks *atomic.Int64) *writerLog {
	lg := &writerLog{last: map[int64]int{}}
	flags := os.O_WRONLY
	if direct {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		lg.err = err
		return lg
	}
	defer f.Close()
	const maxWrite = 256 << 10
	buf := alignedBuf(maxWrite)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := uint64(0); ; i++ {
		// Sizes that take each path of the redo log: part of a grain (copy from the parent), whole
		// grains (appended in runs), and writes across grain boundaries.
		n := []int{blockSize, 3 * blockSize, 64 << 10, 64<<10 + blockSize, maxWrite}[r.IntN(5)]
		align := int64(blockSize)
		if r.IntN(2) == 0 {
			align = 64 << 10
		}
		off := from + r.Int64N((to-from-int64(n))/align+1)*align
		op := writeOp{off: off, n: n, seed: seed<<20 | i}
		op.fill(buf[:n])
		lg.pending = &op
		_, err := f.WriteAt(buf[:n], off)
		if err == nil && !direct {
			err = f.Sync()
		}
		if err != nil {
			lg.err, lg.errAt = err, time.Now()
			return lg
		}
		lg.pending = nil
		lg.acked = append(lg.acked, op)
		for b := off / blockSize; b < (off+int64(n))/blockSize; b++ {
			lg.last[b] = len(lg.acked) - 1
		}
		acks.Add(1)
	}
}

// Losses: every write acknowledged before a SIGKILL of the --rw daemon is in the kept redo log. Writers
// (O_DIRECT, and write+fsync) record each acknowledged write; the daemon is killed at a random moment;
// after umount and check, qemu-img reads the chain back and every acknowledged write must be there,
// every other byte must be the base's, and the base file must be unchanged.
func TestKillLosesNoAcknowledgedWrite(t *testing.T) {
	bin := buildBinary(t)
	c := corpusDir(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	disk := copyCorpusDisk(t, c, "dfvfs/ext2.vmdk", dir)
	base, err := os.ReadFile(filepath.Join(c, "dfvfs", "ext2.raw")) // the base's content, as its source
	if err != nil {
		t.Fatal(err)
	}
	before := sum(t, disk)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	rounds := 4
	if *long {
		rounds = 40
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	var totalAcked, totalLosses, totalPending, totalRepaired int
	const writers = 4
	region := int64(len(base)) / writers
	for round := range rounds {
		redo := filepath.Join(dir, fmt.Sprintf("redo%d.vmdk", round))
		d := startDaemon(t, bin, mnt, "--rw", "--redo", redo, "--keep-redo", disk, mnt)
		var acks atomic.Int64
		logs := make([]*writerLog, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				logs[w] = runWriter(filepath.Join(mnt, "raw", "disk"), int64(w)*region, int64(w+1)*region, w%2 == 0, seed+uint64(round*writers+w), &acks)
			})
		}
		// Kill at a random moment, but only once something was acknowledged (else nothing is tested).
		delay := time.Duration(50+rnd.IntN(700)) * time.Millisecond
		time.Sleep(delay)
		for i := 0; acks.Load() == 0 && i < 500; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		killedAt := time.Now()
		d.kill()
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("writers still blocked 20 s after the daemon was killed")
		}
		for w, lg := range logs {
			if lg.errAt.Before(killedAt) {
				t.Errorf("round %d writer %d: failed before the kill: %v", round, w, lg.err)
			}
		}
		if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount after kill: %v\n%s", err, out)
		}
		if sum(t, disk) != before {
			t.Fatal("the base disk changed")
		}
		problems, err := vddk.Check(redo, true)
		if err != nil {
			t.Fatalf("round %d: the kept redo log does not open: %v", round, err)
		}
		for _, p := range problems {
			if !p.Repaired {
				t.Errorf("round %d: redo log problem left: %v", round, p)
				continue
			}
			totalRepaired++
		}
		if again, err := vddk.Check(redo, false); err != nil || len(again) != 0 {
			t.Errorf("round %d: after repair, check says %v %v", round, again, err)
		}
		got := qemuRaw(t, redo, filepath.Join(dir, "chain.raw"))
		if !bytes.Equal(got, readChain(t, redo)) {
			t.Errorf("round %d: vddk reads the chain differently from qemu-img", round)
		}
		acked, pending, losses, stray := judge(got, base, logs)
		t.Logf("round %d: killed after %v; %d writes acknowledged, %d in flight, %d lost, %d stray blocks; check: %v",
			round, delay, acked, pending, losses, stray, problems)
		if losses != 0 || stray != 0 {
			t.Errorf("round %d: %d acknowledged writes lost, %d blocks no write explains", round, losses, stray)
		}
		totalAcked += acked
		totalPending += pending
		totalLosses += losses
		// The kept redo log mounts, and its raw/disk reads what qemu read.
		if out, err := exec.Command(bin, redo, mnt).CombinedOutput(); err != nil {
			t.Fatalf("round %d: mount of the kept redo log: %v\n%s", round, err, out)
		}
		viaMount, err := os.ReadFile(filepath.Join(mnt, "raw", "disk"))
		exec.Command(bin, "umount", mnt).Run()
		if err != nil || !bytes.Equal(viaMount, got) {
			t.Errorf("round %d: a new mount of the redo log reads differently from qemu-img (%v)", round, err)
		}
	}
	t.Logf("%d rounds: %d writes acknowledged, %d in flight at the kill, %d losses; %d check problems repaired",
		rounds, totalAcked, totalPending, totalLosses, totalRepaired)
	if totalAcked == 0 {
		t.Error("no write was acknowledged before any kill")
	}
}

// judge compares each block of the chain as read back with what the writers know: the last
// acknowledged write to it, or the base; a block the write in flight covered may also hold that
// write's bytes. It counts acknowledged writes missing (in whole or part) and blocks that hold bytes
// no write explains.
func judge(got, base []byte, logs []*writerLog) (acked, pending, losses, stray int) {
	lost := map[[2]int]bool{}
	for _, lg := range logs {
		acked += len(lg.acked)
		if lg.pending != nil {
			pending++
		}
	}
	filled := map[uint64][]byte{} // seed → the write's bytes
	data := func(op writeOp, b int64) []byte {
		buf, ok := filled[op.seed]
		if !ok {
			buf = make([]byte, op.n)
			op.fill(buf)
			filled[op.seed] = buf
		}
		return buf[b*blockSize-op.off:][:blockSize]
	}
	for b := int64(0); b < int64(len(got))/blockSize; b++ {
		have := got[b*blockSize:][:blockSize]
		want := base[b*blockSize:][:blockSize]
		owner := [2]int{-1, -1}
		for w, lg := range logs {
			if i, ok := lg.last[b]; ok {
				want, owner = data(lg.acked[i], b), [2]int{w, i}
			}
			if p := lg.pending; p != nil && p.off <= b*blockSize && b*blockSize < p.off+int64(p.n) && bytes.Equal(have, data(*p, b)) {
				want = have // the write in flight landed here: allowed
			}
		}
		if bytes.Equal(have, want) {
			continue
		}
		if owner[0] >= 0 {
			lost[owner] = true
		} else {
			stray++
		}
	}
	return acked, pending, len(lost), stray
}

// qemuRaw has qemu-img read a VMDK chain into a raw file and returns its bytes.
func qemuRaw(t *testing.T, vmdk, raw string) []byte {
	t.Helper()
	if out, err := exec.Command("qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", filepath.Base(vmdk), err, out)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readChain reads a whole disk through vddk.
func readChain(t *testing.T, vmdk string) []byte {
	t.Helper()
	d, err := vddk.Open(vmdk, vddk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}
