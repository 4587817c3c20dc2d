package vddk

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func copyFixtures(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, f := range names {
		b, err := os.ReadFile(fixture(t, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
}

func qemuIdentical(t *testing.T, a, b string) {
	t.Helper()
	if out := qemu(t, "qemu-img", "compare", a, b); !strings.Contains(out, "identical") {
		t.Errorf("qemu-img compare %s %s: %s", filepath.Base(a), filepath.Base(b), out)
	}
}

func qemuClean(t *testing.T, disk string) {
	t.Helper()
	if out := qemu(t, "qemu-img", "check", disk); !strings.Contains(out, "No errors") {
		t.Errorf("qemu-img check %s: %s", filepath.Base(disk), out)
	}
}

// vmdk commit of a qemu-made three-link chain: the remaining chain reads as the whole chain did.
func TestCombineQemuChain(t *testing.T) {
	dir := t.TempDir()
	copyFixtures(t, dir, "mono-sparse.vmdk", "chain-child1.vmdk", "chain-child2.vmdk")
	before := qemuRaw(t, filepath.Join(dir, "chain-child2.vmdk"))
	if err := Combine(filepath.Join(dir, "chain-child2.vmdk"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "chain-child2.vmdk")); err == nil {
		t.Error("the child is still there")
	}
	qemuIdentical(t, before, filepath.Join(dir, "chain-child1.vmdk"))
	qemuClean(t, filepath.Join(dir, "chain-child1.vmdk"))
}

// Rebase onto a copy of the parent under another name: qemu follows the new hint and reads the same.
func TestAttach(t *testing.T) {
	dir := t.TempDir()
	copyFixtures(t, dir, "mono-sparse.vmdk", "chain-child1.vmdk")
	want := qemuRaw(t, filepath.Join(dir, "chain-child1.vmdk"))
	b, _ := os.ReadFile(filepath.Join(dir, "mono-sparse.vmdk"))
	os.WriteFile(filepath.Join(dir, "other base.vmdk"), b, 0o644)
	os.Remove(filepath.Join(dir, "mono-sparse.vmdk"))
	if err := Attach(filepath.Join(dir, "chain-child1.vmdk"), filepath.Join(dir, "other base.vmdk")); err != nil {
		t.Fatal(err)
	}
	if out := qemu(t, "qemu-img", "info", filepath.Join(dir, "chain-child1.vmdk")); !strings.Contains(out, "other base.vmdk") {
		t.Errorf("qemu-img info does not name the new parent:\n%s", out)
	}
	qemuIdentical(t, want, filepath.Join(dir, "chain-child1.vmdk"))
}

// Grow every kind that grows: the old bytes stay, the new space reads as zeros (qemu-img compare treats a
// longer image whose tail is zeros as identical), and the result checks clean.
func TestGrow(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	randomRaw(t, raw, 3<<20)
	src, err := OpenRaw(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, typ := range []string{TypeMonolithicSparse, TypeMonolithicFlat, TypeTwoGbMaxExtentSparse, TypeTwoGbMaxExtentFlat, TypeVMFS, TypeStreamOptimized} {
		t.Run(typ, func(t *testing.T) {
			p := filepath.Join(dir, typ+".vmdk")
			if err := src.Clone(p, CreateParams{Type: typ}, nil); err != nil {
				t.Fatal(err)
			}
			newSize := int64(5<<20 + 512)
			err := Grow(p, newSize, nil)
			if typ == TypeStreamOptimized {
				if err == nil {
					t.Error("grew a stream-optimized disk in place")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Size() != newSize {
				t.Errorf("size %d, want %d", d.Size(), newSize)
			}
			d.Close()
			if out := qemu(t, "qemu-img", "info", p); !strings.Contains(out, fmt.Sprintf("(%d bytes)", newSize)) {
				t.Errorf("qemu-img info: %s", out)
			}
			qemuIdentical(t, raw, p)
			qemuClean(t, p)
		})
	}
}

// Shrink drops grains of zeros that qemu wrote as data (convert -S 0), and defrag puts grains written in
// reverse order back in order; both keep the content and make the file smaller.
func TestShrinkAndDefrag(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	randomRaw(t, raw, 4<<20)
	fat := filepath.Join(dir, "fat.vmdk")
	qemu(t, "qemu-img", "convert", "-S", "0", "-f", "raw", "-O", "vmdk", raw, fat)
	before, _ := os.Stat(fat)
	if err := Shrink(fat, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(fat)
	if after.Size() >= before.Size() {
		t.Errorf("shrink left %d bytes of %d", after.Size(), before.Size())
	}
	qemuIdentical(t, raw, fat)
	qemuClean(t, fat)

	// Reverse-order writes, then defrag.
	frag := filepath.Join(dir, "frag.vmdk")
	if err := Create(frag, CreateParams{Type: TypeMonolithicSparse, Capacity: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(raw)
	d, _ := Open(frag, Options{Writable: true})
	for off := int64(len(img)) - 65536; off >= 0; off -= 65536 {
		if !IsZero(img[off : off+65536]) {
			d.WriteAt(img[off:off+65536], off)
		}
	}
	d.Close()
	firstGrains := func() []uint32 {
		d, _ := Open(frag, Options{})
		defer d.Close()
		var s []uint32
		for g := int64(0); g < 64; g++ {
			if r, _ := d.links[0].exts[0].(*grainExtent).m.lookup(g); r.state == allocData {
				s = append(s, uint32(r.off/SectorSize))
			}
		}
		return s
	}
	if g := firstGrains(); len(g) < 2 || g[0] < g[len(g)-1] {
		t.Fatalf("grains were not written in reverse order: %v", g)
	}
	if err := Defragment(frag, nil); err != nil {
		t.Fatal(err)
	}
	g := firstGrains()
	for i := 1; i < len(g); i++ {
		if g[i] <= g[i-1] {
			t.Fatalf("grains out of order after defrag: %v", g)
		}
	}
	qemuIdentical(t, raw, frag)
	qemuClean(t, frag)
}

// Rename and rm leave no stray file; the renamed disk reads as before.
func TestRenameAndUnlink(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	randomRaw(t, raw, 3<<20)
	src, _ := OpenRaw(raw, Options{})
	defer src.Close()
	for _, typ := range []string{TypeTwoGbMaxExtentSparse, TypeMonolithicSparse, TypeMonolithicFlat} {
		sub := filepath.Join(dir, typ)
		os.Mkdir(sub, 0o755)
		p := filepath.Join(sub, "old.vmdk")
		if err := src.Clone(p, CreateParams{Type: typ}, nil); err != nil {
			t.Fatal(err)
		}
		np := filepath.Join(sub, "new name.vmdk")
		if err := Rename(p, np); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		entries, _ := os.ReadDir(sub)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "old") {
				t.Errorf("%s: %s left behind", typ, e.Name())
			}
		}
		qemuIdentical(t, raw, np)
		if err := Unlink(np); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(sub); len(entries) != 0 {
			t.Errorf("%s: rm left %v", typ, entries)
		}
	}
}

// Check finds a damaged grain table and an unclean shutdown, and repairs both from what is sound.
func TestCheckRepair(t *testing.T) {
	dir := t.TempDir()
	copyFixtures(t, dir, "mono-sparse.vmdk")
	p := filepath.Join(dir, "mono-sparse.vmdk")
	if ps, err := Check(p, false); err != nil || len(ps) != 0 {
		t.Fatalf("clean disk: %v %v", ps, err)
	}
	want := qemuRaw(t, p)
	f, _ := os.OpenFile(p, os.O_RDWR, 0)
	hdr := make([]byte, SectorSize)
	f.ReadAt(hdr, 0)
	h, _ := parseSparseHeader(hdr)
	gd := make([]byte, 4)
	f.ReadAt(gd, int64(h.GDOffset)*SectorSize)
	gt := binary.LittleEndian.Uint32(gd)
	f.WriteAt([]byte{0xff, 0xff, 0xff, 0x0f}, int64(gt)*SectorSize) // first grain entry far past the end
	f.WriteAt([]byte{1}, 72)                                        // uncleanShutdown
	f.Close()
	ps, err := Check(p, false)
	if err != nil || len(ps) != 2 || !ps[0].Repairable || !ps[1].Repairable {
		t.Fatalf("damaged disk: %v %v", ps, err)
	}
	if out, _ := exec.Command("qemu-img", "check", p).CombinedOutput(); strings.Contains(string(out), "No errors") {
		t.Errorf("qemu-img finds nothing wrong with the damaged disk:\n%s", out)
	}
	ps, err = Check(p, true)
	if err != nil || len(ps) != 2 || !ps[0].Repaired || !ps[1].Repaired {
		t.Fatalf("repair: %v %v", ps, err)
	}
	if ps, err := Check(p, false); err != nil || len(ps) != 0 {
		t.Errorf("after repair: %v %v", ps, err)
	}
	qemuClean(t, p)
	qemuIdentical(t, want, p)
}

// Crash safety: a writer process is killed at random moments during many writes; afterwards the disk
// opens, check --repair leaves it clean, and every write that completed is there.
func TestCrashSafety(t *testing.T) {
	if os.Getenv("VDDK_CRASH_WRITER") != "" {
		t.Skip("helper process")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "crash.vmdk")
	const size = 16 << 20
	if err := Create(p, CreateParams{Type: TypeMonolithicSparse, Capacity: size}); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	model := make([]byte, size)
	unknown := map[[2]int64]bool{}
	r := rand.New(rand.NewPCG(5, 6))
	completed, interrupted := 0, 0
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashWriterHelper$")
		cmd.Env = append(os.Environ(), "VDDK_CRASH_WRITER="+p, "VDDK_CRASH_LOG="+log, fmt.Sprintf("VDDK_CRASH_SEED=%d", round))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+r.IntN(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// Replay the log: "begin off n seed" then "end" for completed writes.
		lf, _ := os.Open(log)
		sc := bufio.NewScanner(lf)
		var pending *[3]int64
		for sc.Scan() {
			var off, n, seed int64
			if _, err := fmt.Sscanf(sc.Text(), "begin %d %d %d", &off, &n, &seed); err == nil {
				pending = &[3]int64{off, n, seed}
				continue
			}
			if sc.Text() == "end" && pending != nil {
				copy(model[pending[0]:], crashData(pending[1], uint64(pending[2])))
				delete(unknown, [2]int64{pending[0], pending[1]})
				pending = nil
				completed++
			}
		}
		lf.Close()
		os.Remove(log)
		if pending != nil {
			// The write in flight may or may not have landed, wholly or in part.
			unknown[[2]int64{pending[0], pending[1]}] = true
			interrupted++
		}
		if _, err := Check(p, true); err != nil {
			t.Fatalf("round %d: check --repair: %v", round, err)
		}
		if ps, err := Check(p, false); err != nil || len(ps) != 0 {
			t.Fatalf("round %d: problems after repair: %v %v", round, ps, err)
		}
		d, err := Open(p, Options{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got := make([]byte, size)
		d.ReadAt(got, 0)
		d.Close()
		for off := range got {
			if got[off] == model[off] {
				continue
			}
			inFlight := false
			for u := range unknown {
				inFlight = inFlight || (int64(off) >= u[0] && int64(off) < u[0]+u[1])
			}
			if !inFlight {
				t.Fatalf("round %d: byte %d is %#x, a completed write left %#x", round, off, got[off], model[off])
			}
		}
		// Bytes of an interrupted write become whatever the disk holds now.
		for u := range unknown {
			copy(model[u[0]:u[0]+u[1]], got[u[0]:u[0]+u[1]])
		}
		clear(unknown)
	}
	if completed < 10 || interrupted == 0 {
		t.Errorf("%d writes completed and %d were interrupted: the test did not exercise crashes", completed, interrupted)
	}
	t.Logf("%d completed writes verified, %d writes interrupted by SIGKILL", completed, interrupted)
	qemuClean(t, p)
}

func crashData(n int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestCrashWriterHelper is the writer process TestCrashSafety kills; it does nothing on its own.
func TestCrashWriterHelper(t *testing.T) {
	p := os.Getenv("VDDK_CRASH_WRITER")
	if p == "" {
		t.Skip("run by TestCrashSafety")
	}
	var seed uint64
	fmt.Sscan(os.Getenv("VDDK_CRASH_SEED"), &seed)
	log, err := os.OpenFile(os.Getenv("VDDK_CRASH_LOG"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(p, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; ; i++ {
		off := r.Int64N(16<<20 - 200000)
		n := int64(1 + r.IntN(150000))
		s := seed<<32 | uint64(i)
		fmt.Fprintf(log, "begin %d %d %d\n", off, n, s)
		if _, err := d.WriteAt(crashData(n, s), off); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(log, "end")
	}
}

// A damaged grain directory is rebuilt from the redundant copy.
func TestCheckRebuildsDirectory(t *testing.T) {
	dir := t.TempDir()
	copyFixtures(t, dir, "mono-sparse.vmdk")
	p := filepath.Join(dir, "mono-sparse.vmdk")
	want := qemuRaw(t, p)
	f, _ := os.OpenFile(p, os.O_RDWR, 0)
	hdr := make([]byte, SectorSize)
	f.ReadAt(hdr, 0)
	h, _ := parseSparseHeader(hdr)
	f.WriteAt([]byte{0xff, 0xff, 0xff, 0x0f}, int64(h.GDOffset)*SectorSize) // GD entry 0 far past the end
	f.Close()
	ps, err := Check(p, true)
	if err != nil || len(ps) == 0 || !ps[0].Repaired {
		t.Fatalf("repair: %v %v", ps, err)
	}
	if ps, err := Check(p, false); err != nil || len(ps) != 0 {
		t.Errorf("after repair: %v %v", ps, err)
	}
	qemuClean(t, p)
	qemuIdentical(t, want, p)
}

func TestSpaceNeededForClone(t *testing.T) {
	d, err := Open(fixture(t, "mono-sparse.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	flat, _ := d.SpaceNeededForClone(TypeMonolithicFlat)
	sparse, _ := d.SpaceNeededForClone(TypeMonolithicSparse)
	st, _ := os.Stat(fixture(t, "mono-sparse.vmdk"))
	if flat != d.Size() || sparse <= 0 || sparse > st.Size()+65536 {
		t.Errorf("flat %d sparse %d (file %d)", flat, sparse, st.Size())
	}
}
