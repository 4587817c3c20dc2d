package vddk

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Images of other formats, made by qemu-img and qemu-io, must read exactly as `qemu-img convert -O raw`
// reads them: through random concurrent ReadAt calls and through CopyRaw, and every range qemu-img map
// calls data must be allocated in our map.

// sourceRaw writes a raw image of size bytes mixing random data (incompressible), text (compressible)
// and zero runs, in 192 KiB pieces so that cluster and block edges fall inside all three.
func sourceRaw(t testing.TB, dir string, size int64) string {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(7, uint64(size)))
	const piece = 192 << 10
	for off := int64(0); off < size; off += piece {
		end := min(off+piece, size)
		switch (off / piece) % 4 {
		case 0:
			for i := off; i < end; i++ {
				b[i] = byte(r.Uint32())
			}
		case 1:
			line := []byte("the quick brown fox jumps over the lazy dog 0123456789\n")
			for i := off; i < end; i++ {
				b[i] = line[int(i)%len(line)]
			}
		}
	}
	p := filepath.Join(dir, "source.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	needTool(t, name)
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
}

// qemuIO writes into an image with qemu-io: each command like "write -P 0x5a 1M 64k".
func qemuIO(t testing.TB, format, path string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	run(t, "qemu-io", append(args, path)...)
}

// matchQemu opens path and compares everything with qemu-img's reading of it.
// qemuFmt names the format for qemu when its probing would not (a fixed VHD probes as raw).
func matchQemu(t *testing.T, path string, opts Options, qemuFmt ...string) *Disk {
	t.Helper()
	var fa []string
	if len(qemuFmt) > 0 {
		fa = []string{"-f", qemuFmt[0]}
	}
	ref := qemuRaw(t, path, fa...)
	d, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	want, err := os.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	st, _ := want.Stat()
	compareReads(t, d, want, st.Size(), 400, nil)
	t.Logf("%d ranges served by FileSpan", checkFileSpans(t, d, 65536, 61440))
	t.Logf("%d ranges of several blocks served by FileSpan", checkFileSpans(t, d, 5<<19, 1<<20+4096))
	out := filepath.Join(t.TempDir(), "ours.raw")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CopyRaw(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sameFiles(t, out, ref)
	blocks, err := d.AllocatedBlocks(0, uint64(d.Size()/SectorSize), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range qemuMapArgs(t, append(fa, path)...) {
		for o := r[0]; o < r[1]; o += SectorSize {
			s := uint64(o / SectorSize)
			found := false
			for _, b := range blocks {
				if s >= b.Offset && s < b.Offset+b.Length {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("qemu-img map says byte %d holds data, our allocation map does not", o)
			}
			o = r[1] - SectorSize // one probe per range keeps this fast; CopyRaw checked the bytes
		}
	}
	return d
}

func TestQcow2MatchesQemu(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 12<<20+3*512)
	cases := []struct {
		name string
		args []string
	}{
		{"v2-64k", []string{"-o", "compat=0.10"}},
		{"v2-4k", []string{"-o", "compat=0.10,cluster_size=4096"}},
		{"v3-4k", []string{"-o", "cluster_size=4096"}},
		{"v3-512", []string{"-o", "cluster_size=512"}},
		{"v3-2m", []string{"-o", "cluster_size=2M"}},
		{"zlib-64k", []string{"-c"}},
		{"zlib-4k", []string{"-c", "-o", "cluster_size=4096"}},
		{"zlib-2m", []string{"-c", "-o", "cluster_size=2M"}},
		{"zstd-64k", []string{"-c", "-o", "compression_type=zstd"}},
		{"zstd-1m", []string{"-c", "-o", "compression_type=zstd,cluster_size=1M"}},
		{"extl2-64k", []string{"-o", "extended_l2=on"}},
		{"extl2-2m", []string{"-o", "extended_l2=on,cluster_size=2M"}},
		{"extl2-zstd", []string{"-c", "-o", "extended_l2=on,compression_type=zstd,cluster_size=128k"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".qcow2")
			run(t, "qemu-img", append(append([]string{"convert", "-O", "qcow2"}, c.args...), src, p)...)
			// Overwrites after the conversion: partial clusters, zero clusters, subclusters.
			qemuIO(t, "qcow2", p, "write -P 0x5a 100k 3k", "write -z 2M 512k", "write -z 5000k 4k", "write -P 0x33 9M 70k", "discard 10M 1M")
			matchQemu(t, p, Options{})
		})
	}
}

// A chain of qcow2 links over a raw base and over a VMDK base, written with qemu-io at every level.
func TestQcow2Chains(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 8<<20)
	in := func(n string) string { return filepath.Join(dir, n) }
	// raw base <- qcow2 v2 <- qcow2 v3 extended L2 <- qcow2 compressed clusters written by qemu-io -c
	run(t, "qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", "-b", "source.raw", "-F", "raw", in("l1.qcow2"))
	qemuIO(t, "qcow2", in("l1.qcow2"), "write -P 0x11 0 1M", "write -P 0x12 3M 4k")
	run(t, "qemu-img", "create", "-f", "qcow2", "-o", "extended_l2=on", "-b", "l1.qcow2", "-F", "qcow2", in("l2.qcow2"))
	qemuIO(t, "qcow2", in("l2.qcow2"), "write -P 0x21 512k 4k", "write -z 3M 2k", "write -P 0x22 7M 100k")
	run(t, "qemu-img", "create", "-f", "qcow2", "-b", "l2.qcow2", "-F", "qcow2", in("top.qcow2"))
	qemuIO(t, "qcow2", in("top.qcow2"), "write -c -P 0x31 1M 64k", "write -z 0 64k")
	d := matchQemu(t, in("top.qcow2"), Options{})
	if n := len(d.Info().Chain); n != 4 {
		t.Errorf("chain of %d links, want 4", n)
	}
	// A qcow2 over a VMDK, and a VMDK child over that qcow2 (made by VixDiskLib's CreateChild).
	run(t, "qemu-img", "convert", "-O", "vmdk", src, in("base.vmdk"))
	run(t, "qemu-img", "create", "-f", "qcow2", "-b", "base.vmdk", "-F", "vmdk", in("over-vmdk.qcow2"))
	qemuIO(t, "qcow2", in("over-vmdk.qcow2"), "write -P 0x41 2M 1M")
	matchQemu(t, in("over-vmdk.qcow2"), Options{})
	// A declared raw backing file is read raw even when it looks like a qcow2 image.
	run(t, "qemu-img", "create", "-f", "qcow2", "-b", "l1.qcow2", "-F", "raw", in("rawdecl.qcow2"))
	matchQemu(t, in("rawdecl.qcow2"), Options{})
	// A VMDK redo log over a qcow2 chain (what vmdkmount --rw makes): writes land in the redo log.
	redo := in("redo.vmdk")
	if err := CreateChild(in("top.qcow2"), redo, ""); err != nil {
		t.Fatal(err)
	}
	w, err := Open(redo, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(bytes.Repeat([]byte{0xee}, 4096), 5<<20); err != nil {
		t.Fatal(err)
	}
	w.Close()
	want := mustRead(t, qemuRaw(t, in("top.qcow2")))
	copy(want[5<<20:], bytes.Repeat([]byte{0xee}, 4096))
	// qemu's VMDK driver takes only VMDK parents: the chain as qemu reads it, plus the write, is the model.
	rd, err := Open(redo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, rd.Size())
	rd.ReadAt(got, 0)
	rd.Close()
	if !bytes.Equal(got, want) {
		t.Error("the redo log over the qcow2 chain does not read as the chain plus the write")
	}
	// SingleLink: what the top does not hold reads as zeros.
	d, err = Open(in("top.qcow2"), Options{SingleLink: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, 4096)
	if _, err := d.ReadAt(b, 6<<20); err != nil || !bytes.Equal(b, make([]byte, 4096)) {
		t.Errorf("single link: %v, or the parent's data was read", err)
	}
}

// An external data file is read (raw and not raw), and confined to the image's folder like an extent.
func TestQcow2ExternalDataFile(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	t.Chdir(dir) // qemu opens a relative data file name from its working folder
	for _, raw := range []string{"on", "off"} {
		p := filepath.Join(dir, "ext-"+raw+".qcow2")
		run(t, "qemu-img", "create", "-f", "qcow2", "-o", "data_file=ext-"+raw+".data,data_file_raw="+raw, p, "4M")
		qemuIO(t, "qcow2", p, "write -P 0x77 64k 200k", "write -P 0x78 3M 4k")
		matchQemu(t, p, Options{})
	}
	// The same image naming a data file outside its folder is refused.
	out := t.TempDir()
	p := filepath.Join(dir, "escape.qcow2")
	run(t, "qemu-img", "create", "-f", "qcow2", "-o", "data_file="+filepath.Join(out, "x.data"), p, "1M")
	if d, err := Open(p, Options{}); err == nil {
		d.Close()
		t.Fatal("a data file outside the folder was opened")
	} else if !strings.Contains(err.Error(), "leaves the disk's folder") {
		t.Errorf("refusal does not say why: %v", err)
	}
}

// Encrypted images and containers vmdkmount does not read are refused by name.
func TestRefusedFormats(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	p := filepath.Join(dir, "enc.qcow2")
	// qemu-img times its PBKDF on the thread's CPU clock and gives up when one round measured 0 ms
	// ("Unable to get accurate CPU usage"), which a quiet, fast machine does now and then: try again.
	args := []string{"create", "-f", "qcow2", "--object", "secret,id=s0,data=pw", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", p, "1M"}
	for try := 1; ; try++ {
		out, err := exec.Command("qemu-img", args...).CombinedOutput()
		if err == nil {
			break
		}
		if try == 10 || !strings.Contains(string(out), "Unable to get accurate CPU usage") {
			t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_, err := Open(p, Options{})
	if CodeOf(err) != ErrDiskNotSupported || !strings.Contains(err.Error(), "encrypted qcow2 image (LUKS)") {
		t.Errorf("encrypted qcow2: %v", err)
	}
	files := map[string][]byte{
		"disk.E01":  append([]byte("EVF\x09\x0d\x0a\xff\x00\x01"), make([]byte, 600)...),
		"disk.qed":  append([]byte("QED\x00"), make([]byte, 600)...),
		"disk.hdd":  append([]byte("WithoutFreeSpace"), make([]byte, 600)...),
		"disk.dmg":  append(make([]byte, 2048), append([]byte("koly"), make([]byte, 508)...)...),
		"empty.img": {},
		"notes.txt": []byte("just some text\nnot a disk\n"),
	}
	want := map[string]string{"disk.E01": "disk.E01: an EWF (E01) image, which vmdkmount does not read", "disk.qed": "a QED image",
		"disk.hdd": "a Parallels image", "disk.dmg": "an Apple DMG (UDIF) image", "empty.img": "an empty file", "notes.txt": "a text file"}
	for n, b := range files {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := DetectFormat(p)
		if err == nil || !strings.Contains(err.Error(), want[n]) {
			t.Errorf("%s: %v, want %q", n, err, want[n])
		}
	}
	for _, n := range []string{"disk.E01", "disk.qed"} {
		if _, err := Open(filepath.Join(dir, n), Options{}); CodeOf(err) != ErrDiskNotSupported || !strings.Contains(err.Error(), want[n]) {
			t.Errorf("Open %s: %v", n, err)
		}
	}
}

// qemuMapArgs is qemuMap with more arguments for qemu-img map (-f FORMAT).
func qemuMapArgs(t testing.TB, args ...string) [][2]int64 {
	t.Helper()
	out, err := exec.Command("qemu-img", append([]string{"map", "--output=json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("qemu-img map %v: %v", args, err)
	}
	var m []struct {
		Start, Length int64
		Data, Zero    bool
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	var r [][2]int64
	for _, e := range m {
		if e.Data && !e.Zero {
			r = append(r, [2]int64{e.Start, e.Start + e.Length})
		}
	}
	return r
}

// convertMatches converts a source image with qemu-img into format (qemu's name) with each set of
// options, overwrites parts with qemu-io, and checks our reading against qemu's; the disk's create
// type must be ours.
func convertMatches(t *testing.T, format, createType string, opts map[string]string) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 12<<20+3*512)
	for _, name := range slices.Sorted(maps.Keys(opts)) {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+"."+createType)
			run(t, "qemu-img", "convert", "-O", format, "-o", opts[name], src, p)
			qemuIO(t, format, p, "write -P 0x5a 100k 3k", "write -P 0x33 9M 70k", "write -z 4M 2M")
			// qemu probes a fixed VHD as raw: name the format.
			d := matchQemu(t, p, Options{}, format)
			if got := d.Info().CreateType; got != createType {
				t.Errorf("create type %q, want %q", got, createType)
			}
		})
	}
}

func TestVHDMatchesQemu(t *testing.T) {
	convertMatches(t, "vpc", "vhd", map[string]string{
		"dynamic": "subformat=dynamic", "fixed": "subformat=fixed",
		"dynamic-force-size": "subformat=dynamic,force_size=on", "fixed-force-size": "subformat=fixed,force_size=on",
	})
}

func TestVHDXMatchesQemu(t *testing.T) {
	convertMatches(t, "vhdx", "vhdx", map[string]string{
		"dynamic-1m": "subformat=dynamic,block_size=1M", "dynamic-8m": "subformat=dynamic,block_size=8M",
		"dynamic-32m": "subformat=dynamic,block_size=32M", "dynamic-256m": "subformat=dynamic,block_size=256M",
		"dynamic-zero-state": "subformat=dynamic,block_size=2M,block_state_zero=on",
		"fixed-1m":           "subformat=fixed,block_size=1M", "fixed-16m": "subformat=fixed,block_size=16M",
	})
}

func TestVDIMatchesQemu(t *testing.T) {
	convertMatches(t, "vdi", "vdi", map[string]string{"dynamic": "static=off", "static": "static=on"})
}

// checkFileSpans checks that the file ranges FileSpan hands out (for sendfile and splice) hold exactly
// what ReadAt reads, for ranges of n bytes every step bytes; it returns how many were handed out.
func checkFileSpans(t *testing.T, d *Disk, n, step int64) int {
	t.Helper()
	spans := 0
	a, b := make([]byte, n), make([]byte, n)
	for off := int64(0); off+n <= d.Size(); off += step {
		f, fo, ok := d.FileSpan(off, n)
		if !ok {
			continue
		}
		spans++
		if _, err := f.ReadAt(a, fo); err != nil {
			t.Fatalf("FileSpan(%d): file read at %d: %v", off, fo, err)
		}
		d.ReadAt(b, off)
		if !bytes.Equal(a, b) {
			t.Fatalf("FileSpan(%d) names file bytes at %d that differ from ReadAt", off, fo)
		}
	}
	return spans
}

// Backing files follow the rule of VMDK parents: one in another folder is opened when it is itself a
// disk image (a qcow2 base kept elsewhere), a raw one only beside the child.
func TestQcow2BackingInAnotherFolder(t *testing.T) {
	needTool(t, "qemu-img")
	base, top := t.TempDir(), t.TempDir()
	src := sourceRaw(t, base, 2<<20)
	run(t, "qemu-img", "convert", "-O", "qcow2", src, filepath.Join(base, "base.qcow2"))
	child := filepath.Join(top, "child.qcow2")
	run(t, "qemu-img", "create", "-f", "qcow2", "-b", filepath.Join(base, "base.qcow2"), "-F", "qcow2", child)
	qemuIO(t, "qcow2", child, "write -P 0x44 64k 64k")
	matchQemu(t, child, Options{})
	raw := filepath.Join(top, "over-raw.qcow2")
	run(t, "qemu-img", "create", "-f", "qcow2", "-b", src, "-F", "raw", raw)
	if d, err := Open(raw, Options{}); err == nil {
		d.Close()
		t.Fatal("a raw backing file outside the folder was opened")
	} else if CodeOf(err) != ErrDiskOpenParent || !strings.Contains(err.Error(), "allow with") {
		t.Errorf("refusal does not say why: %v", err)
	}
}
