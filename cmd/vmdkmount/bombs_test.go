package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/memlimit"
	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// The memory bombs of hostile images, run against the real daemon: the attacker's operation ends in
// time with the right answer (the listing, or EIO for the damaged file), the daemon's peak RSS stays
// under bombRSSBound, and afterwards it is alive and its mount answers.

// bombRSSBound is the daemon's peak resident memory allowed while a bomb goes off (the attacks took
// 2.3 to 4.2 GB, or were killed).
const bombRSSBound = 200 << 20

// bombTimeBound is how long the attacker's operation may take (the block-map directory took 22 s).
const bombTimeBound = 10 * time.Second

// toVMDK converts a raw image to a VMDK of the given subformat with qemu-img.
func toVMDK(t *testing.T, raw, subformat string) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	out := filepath.Join(t.TempDir(), "bomb.vmdk")
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+subformat, raw, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	return out
}

// detonate mounts disk in the foreground, runs the attacker's operation on the mount (bounded in
// time), then checks the daemon's peak RSS, that it is alive, and that the mount's root and the tree's
// good file still answer, and unmounts. It returns the peak RSS.
func detonate(t *testing.T, disk string, attack func(mnt string)) int64 {
	t.Helper()
	bin := buildBinary(t)
	mnt := mountPoint(t, bin, t.TempDir())
	d := startDaemon(t, bin, mnt, disk, mnt)
	// The daemon's log, once it has exited (its buffer is written until then).
	defer func() {
		select {
		case <-d.done:
			if t.Failed() {
				t.Logf("the daemon's log:\n%s", d.out)
			}
		default:
		}
	}()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); attack(mnt) }()
	timedOut := false
	select {
	case <-done:
	case <-time.After(bombTimeBound):
		timedOut = true
	}
	elapsed := time.Since(start)
	peak, rssErr := memlimit.PeakRSS(d.cmd.Process.Pid)
	select {
	case <-d.done:
		<-done
		t.Fatalf("the daemon died during the attack (after %v)", elapsed.Round(time.Millisecond))
	default:
	}
	if rssErr != nil {
		t.Fatal(rssErr)
	}
	t.Logf("attack took %v, daemon's peak RSS %d MiB", elapsed.Round(time.Millisecond), peak>>20)
	if timedOut {
		d.kill()
		<-done
		t.Fatalf("the attack did not finish within %v", bombTimeBound)
	}
	if peak > bombRSSBound {
		t.Errorf("the daemon's peak RSS is %d MiB, bound %d MiB", peak>>20, bombRSSBound>>20)
	}
	if _, err := os.Stat(mnt); err != nil {
		t.Errorf("stat of the mount's root afterwards: %v", err)
	}
	if names, err := os.ReadDir(mnt); err != nil || len(names) == 0 {
		t.Errorf("listing of the mount's root afterwards: %v %v", names, err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "disk", testfix.GoodFile)); err != nil || string(b) != testfix.GoodText {
		t.Errorf("%s afterwards: %q %v", testfix.GoodFile, b, err)
	}
	if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
		t.Errorf("umount: %v\n%s", err, out)
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Error("the daemon did not exit after umount")
	}
	return peak
}

// An ext4 directory in block-map form whose indirect blocks all point at one block (a directory of a
// million blocks that are one), as a stream-optimized VMDK: ls lists its entries once.
func TestMountBombRepeatedBlockDirectory(t *testing.T) {
	disk := toVMDK(t, testfix.RepeatedBlockDirImage(t, false), "streamOptimized")
	detonate(t, disk, func(mnt string) {
		ents, err := os.ReadDir(filepath.Join(mnt, "disk", "d"))
		if err != nil || len(ents) != testfix.RepeatedBlockDirEntries {
			t.Errorf("ls of the directory: %d entries, %v; want %d", len(ents), err, testfix.RepeatedBlockDirEntries)
		}
		// ls -l: every entry stat'ed too.
		for _, e := range ents {
			if _, err := e.Info(); err != nil {
				t.Errorf("stat of %s: %v", e.Name(), err)
			}
		}
	})
}

// squashfs whose file's xz block has a second LZMA2 block asking for a 4 GiB dictionary: cat of the
// file fails with EIO (damage), again and again, without the dictionary being allocated.
func TestMountBombXzDictionary(t *testing.T) {
	disk := toVMDK(t, testfix.SquashfsXzBombImage(t), "monolithicSparse")
	detonate(t, disk, func(mnt string) {
		for range 4 {
			b, err := os.ReadFile(filepath.Join(mnt, "disk", testfix.SquashfsBombFile))
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("cat of the file: %d bytes, %v; want EIO", len(b), err)
			}
		}
	})
}

// A descriptor whose 4,095 SPARSE lines all name one sparse file with a 32 MiB grain directory, after
// a FLAT line holding a small ext4 volume: the file's tables load once, the walk of the mount and reads
// across the 2 TiB disk answer.
func TestMountBombManyLinesOneFile(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, testfix.GoodFile), []byte(testfix.GoodText), 0o644)
	const fsSectors = 8192
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, filepath.Join(dir, "fs.img"), strconv.Itoa(fsSectors/2)+"k").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	testfix.SparseGrainDirFile(t, filepath.Join(dir, "big.vmdk"), 8<<20)
	lines := []string{fmt.Sprintf(`RW %d FLAT "fs.img" 0`, fsSectors)}
	for len(lines) < 4096 {
		lines = append(lines, `RW 1048576 SPARSE "big.vmdk"`)
	}
	disk := filepath.Join(dir, "bomb.vmdk")
	if err := os.WriteFile(disk, []byte(testfix.ManyLinesDescriptor("custom", lines)), 0o644); err != nil {
		t.Fatal(err)
	}
	const size = fsSectors*512 + 4095<<29
	detonate(t, disk, func(mnt string) {
		var names []string
		filepath.Walk(mnt, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				t.Errorf("walk: %v", err)
				return nil
			}
			names = append(names, strings.TrimPrefix(p, mnt))
			return nil
		})
		if !slices.Contains(names, "/disk/"+testfix.GoodFile) || !slices.Contains(names, "/raw/disk") {
			t.Errorf("the walk saw %v", names)
		}
		f, err := os.Open(filepath.Join(mnt, "raw", "disk"))
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || st.Size() != size {
			t.Errorf("raw/disk: %v %v, want %d bytes", st, err, size)
		}
		buf := make([]byte, 1<<20)
		for _, off := range []int64{fsSectors * 512, size / 3, size / 2, size - int64(len(buf))} {
			if n, err := f.ReadAt(buf, off); (err != nil && err != io.EOF) || n != len(buf) || !bytes.Equal(buf, make([]byte, len(buf))) {
				t.Errorf("read at %d: %d bytes, %v, zero %v", off, n, err, bytes.Count(buf, []byte{0}) == len(buf))
			}
		}
	})
}

// A legitimate directory of 100,000 entries (the attack's had a million: too slow to make in CI; see
// bench/ext4-bigdir.sh), listed by `ls -f`: the daemon streams it, so its memory does not grow with the
// directory: under 80 MiB of peak RSS (a daemon that held whole listings took 135 MiB here).
func TestMountBigDirectory(t *testing.T) {
	disk := toVMDK(t, testfix.BigDirImage(t), "monolithicSparse")
	peak := detonate(t, disk, func(mnt string) {
		out, err := exec.Command("ls", "-f", filepath.Join(mnt, "disk", "big")).Output()
		if err != nil {
			t.Errorf("ls -f: %v", err)
			return
		}
		seen := make(map[string]bool, testfix.BigDirEntries)
		for _, name := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			seen[name] = true
		}
		delete(seen, ".")
		delete(seen, "..")
		for i := range testfix.BigDirEntries {
			if !seen[testfix.BigDirName(i)] {
				t.Errorf("ls -f lists %d names; %s is not among them", len(seen), testfix.BigDirName(i))
				return
			}
		}
		if len(seen) != testfix.BigDirEntries {
			t.Errorf("ls -f lists %d names, want %d", len(seen), testfix.BigDirEntries)
		}
	})
	const bound = 80 << 20
	if peak > bound {
		t.Errorf("the daemon's peak RSS is %d MiB, bound %d MiB for %d entries", peak>>20, bound>>20, testfix.BigDirEntries)
	}
}
