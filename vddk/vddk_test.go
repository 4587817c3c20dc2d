package vddk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every qemu-made fixture reads exactly as qemu-img converts it: whole-disk copy and random ReadAt.
func TestFixturesMatchQemu(t *testing.T) {
	cases := []struct {
		name       string
		createType string
		links      int
		hot        []int64
	}{
		{"mono-sparse.vmdk", "monolithicSparse", 1, nil},
		{"stream.vmdk", "streamOptimized", 1, nil},
		{"zeroed-grain.vmdk", "monolithicSparse", 1, []int64{1 << 20}},
		{"mono-flat.vmdk", "monolithicFlat", 1, nil},
		{"split-sparse.vmdk", "twoGbMaxExtentSparse", 1, []int64{2 << 30, 1 << 30}},
		{"chain-child1.vmdk", "monolithicSparse", 2, []int64{40960, 2 << 20}},
		{"chain-child2.vmdk", "monolithicSparse", 3, []int64{40960, 45056, 2 << 20, 4 << 20}},
		{"custom-sparse.vmdk", "monolithicSparse", 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fixture(t, c.name)
			d, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			inf := d.Info()
			if inf.CreateType != c.createType || inf.NumLinks != c.links {
				t.Errorf("createType %q links %d, want %q %d", inf.CreateType, inf.NumLinks, c.createType, c.links)
			}
			raw := qemuRaw(t, path)
			ref, err := os.Open(raw)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			st, _ := ref.Stat()
			hot := append(c.hot, d.Size()-1, d.Size()-65536)
			compareReads(t, d, ref, st.Size(), 400, hot)
			if d.Size() < 64<<20 {
				got := filepath.Join(t.TempDir(), "ours.raw")
				f, err := os.Create(got)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.CopyRaw(f); err != nil {
					t.Fatal(err)
				}
				f.Close()
				sameFiles(t, got, raw)
				var buf bytes.Buffer // the non-seekable path of CopyRaw
				if err := d.CopyRaw(&buf); err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(raw)
				if !bytes.Equal(buf.Bytes(), want) {
					t.Error("CopyRaw to a buffer differs from qemu-img")
				}
			}
		})
	}
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ (%d and %d bytes)", filepath.Base(a), filepath.Base(b), len(x), len(y))
	}
}

// AllocatedBlocks agrees with qemu-img map on every sparse kind, chains included.
func TestAllocatedBlocksMatchQemuMap(t *testing.T) {
	needTool(t, "qemu-img")
	for _, name := range []string{"mono-sparse.vmdk", "stream.vmdk", "zeroed-grain.vmdk", "split-sparse.vmdk", "chain-child2.vmdk", "mono-flat.vmdk"} {
		t.Run(name, func(t *testing.T) {
			path := fixture(t, name)
			d, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			blocks, err := d.AllocatedBlocks(0, uint64(d.Size()/SectorSize), 128)
			if err != nil {
				t.Fatal(err)
			}
			ours := map[int64]bool{}
			for _, b := range blocks {
				for s := b.Offset; s < b.Offset+b.Length; s += 128 {
					ours[int64(s)*SectorSize/65536] = true
				}
			}
			theirs := map[int64]bool{}
			for _, r := range qemuMap(t, path) {
				for o := r[0] / 65536 * 65536; o < r[1]; o += 65536 {
					theirs[o/65536] = true
				}
			}
			for c := range theirs {
				if !ours[c] {
					t.Errorf("qemu says chunk at %d holds data, we do not", c*65536)
				}
			}
			for c := range ours {
				if !theirs[c] {
					t.Errorf("we say chunk at %d holds data, qemu does not", c*65536)
				}
			}
			if len(ours) == 0 {
				t.Error("no allocated chunk found")
			}
		})
	}
}

// A monolithic sparse file copied under another name opens as itself: its embedded descriptor names the
// old file, which must not matter (libvmdk fails here).
func TestRenamedMonolithicSparse(t *testing.T) {
	src, err := os.ReadFile(fixture(t, "mono-sparse.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "renamed copy.vmdk")
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw := qemuRaw(t, fixture(t, "mono-sparse.vmdk"))
	ref, _ := os.Open(raw)
	defer ref.Close()
	compareReads(t, d, ref, d.Size(), 100, nil)
}

// The custom descriptor mixes FLAT at an offset, ZERO and an RDONLY sparse extent. qemu drops the
// non-RW lines, so the expected disk is assembled from its parts: the flat file's bytes, zeros, and
// qemu's reading of the sparse extent on its own.
func TestCustomDescriptor(t *testing.T) {
	d, err := Open(fixture(t, "custom.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	flat, err := os.ReadFile(fixture(t, "custom-flat.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sparse, err := os.ReadFile(qemuRaw(t, fixture(t, "custom-sparse.vmdk")))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, flat[100*512:600*512]...), make([]byte, 300*512)...), sparse...)
	got := make([]byte, d.Size())
	if n, err := d.ReadAt(got, 0); err != nil && err != io.EOF || n != len(want) {
		t.Fatalf("read %d of %d: %v", n, len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("custom disk content differs from its assembled parts")
	}
	// A copy to a file takes the kernel path (sendfile) for the flat extent at file offset 100 sectors.
	out := filepath.Join(t.TempDir(), "custom.raw")
	f, _ := os.Create(out)
	if err := d.CopyRaw(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(out); !bytes.Equal(b, want) {
		t.Error("CopyRaw of the custom disk differs from its assembled parts")
	}
	// Reads straddling every extent edge.
	for _, edge := range []int64{500 * 512, 800 * 512} {
		p := make([]byte, 3000)
		if _, err := d.ReadAt(p, edge-1500); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, want[edge-1500:edge+1500]) {
			t.Errorf("read across the extent edge at %d differs", edge)
		}
	}
	inf := d.Info()
	if inf.AdapterType != "buslogic" || inf.Geometry == nil || inf.Geometry.Cylinders != 2 || inf.CID != "1234abcd" || inf.DiskType != DiskUnknown {
		t.Errorf("info %+v", inf)
	}
	if len(inf.Chain[0].Extents) != 3 || inf.Chain[0].Extents[2].Access != "RDONLY" || inf.Chain[0].Extents[1].Format != "zero" {
		t.Errorf("extents %+v", inf.Chain[0].Extents)
	}
}

// Reading the top link alone: what it does not hold reads as zeros; compared with qemu reading the
// child with its backing file removed.
func TestSingleLink(t *testing.T) {
	path := fixture(t, "chain-child2.vmdk")
	d, err := Open(path, Options{SingleLink: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Info().NumLinks != 1 {
		t.Fatalf("%d links", d.Info().NumLinks)
	}
	raw := qemuRaw(t, fmt.Sprintf(`json:{"driver":"vmdk","file":{"driver":"file","filename":%q},"backing":null}`, path))
	ref, _ := os.Open(raw)
	defer ref.Close()
	compareReads(t, d, ref, d.Size(), 200, []int64{45056, 4 << 20, 2 << 20})
}

// ESXi formats: a vmfs flat base with a COWD and a seSparse child, judged by qemu-img.
func TestESXFormats(t *testing.T) {
	dir := t.TempDir()
	base, cowd, se := makeESXChains(t, dir)
	for _, c := range []struct {
		path, createType string
		links            int
	}{{base, "vmfs", 1}, {cowd, "vmfsSparse", 2}, {se, "seSparse", 2}} {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			d, err := Open(c.path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if inf := d.Info(); inf.CreateType != c.createType || inf.NumLinks != c.links || inf.Kind != "managed" {
				t.Errorf("info %+v", inf)
			}
			raw := qemuRaw(t, c.path)
			want, _ := os.ReadFile(raw)
			got := make([]byte, d.Size())
			if _, err := d.ReadAt(got, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("differs from qemu-img")
			}
			ref, _ := os.Open(raw)
			defer ref.Close()
			compareReads(t, d, ref, d.Size(), 200, []int64{4096, 5000 * 512, 1000 * 4096})
		})
	}
	// The bare extent files open on their own as single-link disks.
	for _, f := range []string{"esx-000001-delta.vmdk", "esx-000002-sesparse.vmdk"} {
		d, err := Open(filepath.Join(dir, f), Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.Size() != 8192*SectorSize {
			t.Errorf("%s: size %d", f, d.Size())
		}
		d.Close()
	}
}

// Error cases carry the VixDiskLib code, name the file, and never leave the disk's folder.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		writeText(t, p, text)
		return p
	}
	desc := func(cid, parent uint32, hint string, extents ...string) string {
		s := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%08x\ncreateType=\"custom\"\n", cid, parent)
		if hint != "" {
			s += fmt.Sprintf("parentFileNameHint=%q\n", hint)
		}
		return s + strings.Join(extents, "\n") + "\n"
	}
	os.WriteFile(filepath.Join(dir, "data.bin"), make([]byte, 4096), 0o644)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.bin"), bytes.Repeat([]byte("S"), 4096), 0o644)
	os.Symlink(filepath.Join(outside, "secret.bin"), filepath.Join(dir, "link.bin"))

	cases := []struct {
		name string
		path string
		code Code
		opts Options
		says string
	}{
		{"absolute extent", write("abs.vmdk", desc(1, CIDNone, "", `RW 8 FLAT "`+filepath.Join(outside, "secret.bin")+`" 0`)), ErrFileAccessError, Options{}, "leaves the disk's folder"},
		{"dotdot extent", write("dotdot.vmdk", desc(1, CIDNone, "", `RW 8 FLAT "../`+filepath.Base(outside)+`/secret.bin" 0`)), ErrFileAccessError, Options{}, "leaves"},
		{"symlinked extent", write("sym.vmdk", desc(1, CIDNone, "", `RW 8 FLAT "link.bin" 0`)), ErrFileAccessError, Options{}, "leaves"},
		{"etc passwd", write("passwd.vmdk", desc(1, CIDNone, "", `RW 1 FLAT "/etc/passwd" 0`)), ErrFileAccessError, Options{}, "leaves"},
		{"device", write("dev.vmdk", desc(1, CIDNone, "", `RW 1 FLAT "/dev/zero" 0`)), ErrFileAccessError, Options{}, "leaves"},
		{"missing extent", write("missing.vmdk", desc(1, CIDNone, "", `RW 8 SPARSE "nope-s001.vmdk"`)), ErrFileNotFound, Options{}, "nope-s001.vmdk"},
		{"short flat", write("short.vmdk", desc(1, CIDNone, "", `RW 100 FLAT "data.bin" 0`)), ErrDiskInvalidDisk, Options{}, "the file has 4096"},
		{"rdm", write("rdm.vmdk", desc(1, CIDNone, "", `RW 100 VMFSRDM "x-rdm.vmdk"`)), ErrDiskNotSupported, Options{}, "raw device map"},
		{"missing parent", write("orphan.vmdk", desc(2, 1, "gone.vmdk", `RW 8 ZERO`)), ErrDiskOpenParent, Options{}, "gone.vmdk"},
		{"loop a", write("loop-a.vmdk", desc(5, 6, "loop-b.vmdk", `RW 8 ZERO`)), ErrDiskInvalidChain, Options{}, "loops"},
		{"cid mismatch", write("child.vmdk", desc(7, 0xdead, "parent.vmdk", `RW 8 ZERO`)), ErrDiskCIDMismatch, Options{}, "CID"},
		{"bad version", write("v9.vmdk", "version=9\nRW 8 ZERO\n"), ErrDiskInvalidDisk, Options{}, "version 9"},
		{"huge extent", write("huge.vmdk", desc(1, CIDNone, "", "RW 99999999999999999 ZERO")), ErrDiskInvalidDisk, Options{}, "sector count"},
		{"no extents", write("empty.vmdk", desc(1, CIDNone, "")), ErrDiskInvalidDisk, Options{}, "no extent lines"},
		{"binary junk", write("junk.vmdk", "\x01\x02\x03garbage"), ErrDiskInvalidDisk, Options{}, "not a VMDK"},
	}
	write("loop-b.vmdk", desc(6, 5, "loop-a.vmdk", `RW 8 ZERO`))
	write("parent.vmdk", desc(0xbeef, CIDNone, "", `RW 8 ZERO`))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Open(c.path, c.opts)
			if err == nil {
				d.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.code) {
				t.Errorf("code %d (%v), want %d", CodeOf(err), err, c.code)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
			if !strings.Contains(err.Error(), dir) && !strings.Contains(err.Error(), filepath.Base(c.path)) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	// With the caller's permission the same outside extent opens and reads.
	d, err := Open(filepath.Join(dir, "sym.vmdk"), Options{AllowExternalPaths: true})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 8)
	d.ReadAt(p, 0)
	d.Close()
	if string(p) != "SSSSSSSS" {
		t.Errorf("read %q through an allowed outside extent", p)
	}
	// A CID mismatch can be ignored on request.
	if d, err := Open(filepath.Join(dir, "child.vmdk"), Options{IgnoreCIDMismatch: true}); err != nil {
		t.Errorf("IgnoreCIDMismatch: %v", err)
	} else {
		d.Close()
	}
	// NOACCESS extents open but cannot be read.
	d, err = Open(write("noaccess.vmdk", desc(1, CIDNone, "", `RW 8 ZERO`, `NOACCESS 8 FLAT "data.bin" 0`)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(make([]byte, 512), 8*512); !errors.Is(err, ErrFileAccessError) {
		t.Errorf("NOACCESS read: %v", err)
	}
	if _, err := d.ReadAt(make([]byte, 512), 0); err != nil {
		t.Errorf("read before the NOACCESS extent: %v", err)
	}
	d.Close()
}

// A parent whose content changed after the child was made is refused, as qemu does when it reads
// through it; the qemu-made chain is the witness.
func TestCIDMismatchAfterParentWrite(t *testing.T) {
	needTool(t, "qemu-io")
	dir := t.TempDir()
	for _, f := range []string{"mono-sparse.vmdk", "chain-child1.vmdk"} {
		b, _ := os.ReadFile(fixture(t, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	if out, err := exec.Command("qemu-io", "-f", "vmdk", "-c", "write -P 1 0 512", filepath.Join(dir, "mono-sparse.vmdk")).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v %s", err, out)
	}
	_, err := Open(filepath.Join(dir, "chain-child1.vmdk"), Options{})
	if !errors.Is(err, ErrDiskCIDMismatch) {
		t.Fatalf("got %v, want a CID mismatch", err)
	}
}

func TestReadAtEdges(t *testing.T) {
	d, err := Open(fixture(t, "mono-sparse.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n, err := d.ReadAt(make([]byte, 10), d.Size()); n != 0 || err != io.EOF {
		t.Errorf("read at end: %d %v", n, err)
	}
	if n, err := d.ReadAt(make([]byte, 10), d.Size()-4); n != 4 || err != io.EOF {
		t.Errorf("read across end: %d %v", n, err)
	}
	if _, err := d.ReadAt(make([]byte, 10), -1); !errors.Is(err, ErrDiskOutOfRange) {
		t.Errorf("negative offset: %v", err)
	}
	if err := d.ReadSectors(uint64(d.Size()/SectorSize), 1, make([]byte, 512)); !errors.Is(err, ErrDiskOutOfRange) {
		t.Errorf("ReadSectors past the end: %v", err)
	}
	buf := make([]byte, 1024)
	if err := d.ReadSectors(0, 2, buf); err != nil || !bytes.HasPrefix(buf, []byte("vmdkmount test disk")) {
		t.Errorf("ReadSectors: %v %q", err, buf[:20])
	}
	if ErrorText(ErrDiskCIDMismatch) == "" || !strings.Contains(ErrorText(Code(99999)), "99999") {
		t.Error("ErrorText")
	}
}

// The disk's info carries what qemu-img info reports about the same file.
func TestInfoMatchesQemu(t *testing.T) {
	needTool(t, "qemu-img")
	d, err := Open(fixture(t, "zeroed-grain.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := exec.Command("qemu-img", "info", fixture(t, "zeroed-grain.vmdk")).Output()
	if err != nil {
		t.Fatal(err)
	}
	inf := d.Info()
	for _, want := range []string{
		fmt.Sprintf("(%d bytes)", inf.Capacity),
		fmt.Sprintf("cid: %d", d.links[0].desc.CID),
		"create type: " + inf.CreateType,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("qemu-img info does not say %q:\n%s", want, out)
		}
	}
	e := inf.Chain[0].Extents[0]
	if inf.AdapterType != "lsilogic" || inf.HWVersion != 9 || e.Version != 2 || e.Flags&flagZeroedGrain == 0 || e.GrainSectors != 128 {
		t.Errorf("info %+v extent %+v", inf, e)
	}
	if d.Metadata()["adapterType"] != "lsilogic" || len(d.MetadataKeys()) < 3 {
		t.Errorf("metadata %v", d.Metadata())
	}
}

// Unbuffered opens keep no inflated grains, and read the same bytes.
func TestUnbufferedStream(t *testing.T) {
	path := fixture(t, "stream.vmdk")
	d, err := Open(path, Options{Unbuffered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	g := d.links[0].exts[0].(*grainExtent)
	if g.inflater == nil || g.inflater.cache != nil {
		t.Fatal("unbuffered stream extent keeps a grain cache")
	}
	ref, _ := os.Open(qemuRaw(t, path))
	defer ref.Close()
	compareReads(t, d, ref, d.Size(), 100, nil)
}

// twoGbMaxExtentFlat across its 2 GiB extent edge, made by qemu at test time (the files are sparse).
func TestSplitFlat(t *testing.T) {
	needTool(t, "qemu-io")
	dir := t.TempDir()
	p := filepath.Join(dir, "split flat.vmdk")
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v %s", name, args, err, out)
		}
	}
	run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", p, "2052M")
	run("qemu-io", "-f", "vmdk", "-c", "write -P 0x61 2147450880 64k", "-c", "write -P 0x62 1M 4k", "-c", "write -P 0x63 2050M 512", p)
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if inf := d.Info(); inf.CreateType != "twoGbMaxExtentFlat" || len(inf.Chain[0].Extents) != 2 {
		t.Fatalf("info %+v", inf)
	}
	ref, _ := os.Open(qemuRaw(t, p))
	defer ref.Close()
	compareReads(t, d, ref, d.Size(), 200, []int64{2 << 30, 1 << 20, 2050 << 20})
	blocks, err := d.AllocatedBlocks(0, uint64(d.Size()/SectorSize), 128)
	if err != nil || len(blocks) == 0 || len(blocks) > 4 {
		t.Errorf("holes of the flat files are not skipped: %d blocks, %v", len(blocks), err)
	}
}

// When the primary grain directory is damaged, the redundant copy serves the same grains.
func TestRedundantDirectoryFallback(t *testing.T) {
	src := fixture(t, "mono-sparse.vmdk")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseSparseHeader(b)
	if h.Flags&flagRedundantGD == 0 {
		t.Fatal("fixture has no redundant directory")
	}
	for i := range 4 { // point the first primary GD entries far past the end of the file
		copy(b[int64(h.GDOffset)*SectorSize+int64(4*i):], []byte{0xff, 0xff, 0xff, 0x7f})
	}
	p := filepath.Join(t.TempDir(), "damaged.vmdk")
	os.WriteFile(p, b, 0o644)
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ref, _ := os.Open(qemuRaw(t, src))
	defer ref.Close()
	compareReads(t, d, ref, d.Size(), 100, nil)
}

// A child whose parentFileNameHint is an absolute path inside the folder, and one whose absolute hint
// names a folder that no longer exists (the VM was moved): both find their parent.
func TestAbsoluteParentHint(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"mono-sparse.vmdk", "chain-child1.vmdk"} {
		b, _ := os.ReadFile(fixture(t, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	child := filepath.Join(dir, "chain-child1.vmdk")
	orig, _ := os.ReadFile(child)
	for _, hint := range []string{filepath.Join(dir, "mono-sparse.vmdk"), "/vmfs/volumes/old/vm/mono-sparse.vmdk", `C:\VMs\old\mono-sparse.vmdk`} {
		b := bytes.Replace(orig, []byte(`parentFileNameHint="mono-sparse.vmdk"`), []byte(`parentFileNameHint="`+hint+`"`), 1)
		if bytes.Equal(b, orig) {
			t.Fatal("hint not found in the fixture")
		}
		os.WriteFile(child, b, 0o644)
		d, err := Open(child, Options{})
		if err != nil {
			t.Fatalf("hint %q: %v", hint, err)
		}
		if d.Info().NumLinks != 2 {
			t.Errorf("hint %q: %d links", hint, d.Info().NumLinks)
		}
		d.Close()
	}
}

// qemu reads a descriptor as a C string: what follows its first NUL does not count. qemu-img itself
// sometimes leaves bytes there (text, NUL, "\n", NULs: about once in 150 conversions of a 24 MiB disk
// to monolithicFlat, seemingly the end of a longer earlier text rewritten with a shorter CID), so such
// a file must open, and read as qemu-img reads it; a control byte before the NUL is still no descriptor.
func TestDescriptorTailAfterNUL(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "flat.vmdk")
	run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", src, img)
	text, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	for _, tail := range []string{"\n", "7\"\n", "\x01\x02binary\xff"} {
		desc := append(append(append([]byte{}, text...), 0), tail...)
		desc = append(desc, make([]byte, 512-len(desc)%512)...)
		if err := os.WriteFile(img, desc, 0o644); err != nil {
			t.Fatal(err)
		}
		ref := qemuRaw(t, img, "-f", "vmdk") // qemu-img takes it
		if ok, err := IsVMDK(img); !ok || err != nil {
			t.Errorf("tail %q: IsVMDK %v, %v", tail, ok, err)
		}
		d, err := Open(img, Options{})
		if err != nil {
			t.Fatalf("tail %q: %v", tail, err)
		}
		sameFiles(t, copyRawTo(t, d, t.TempDir()), ref)
		d.Close()
	}
	bad := append(append([]byte{}, text[:20]...), '\x01')
	if err := os.WriteFile(img, append(bad, text[20:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(img, Options{}); err == nil || !strings.Contains(err.Error(), "not a text descriptor") {
		t.Errorf("a control byte inside the text: %v", err)
	}
}
