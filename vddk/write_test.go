package vddk

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// randomRaw writes a raw image with random data, text, holes and a partial last sector run.
func randomRaw(t testing.TB, path string, size int64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	img := make([]byte, size)
	for off := int64(0); off < size; {
		n := min(size-off, int64(4096+r.IntN(300000)))
		switch r.IntN(4) {
		case 0:
			for i := off; i < off+n; i++ {
				img[i] = byte(r.Uint32())
			}
		case 1:
			for i := off; i < off+n; i++ {
				img[i] = "text of a guest file\n"[i%21]
			}
		}
		off += n
	}
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

func qemu(t testing.TB, name string, args ...string) string {
	t.Helper()
	needTool(t, name)
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// Every creatable type, converted from a raw image with holes: qemu-img compares it identical and checks
// it clean, and libvmdk's vmdkinfo opens it.
func TestConvertEveryType(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	want := randomRaw(t, raw, 9<<20+3*512)
	src, err := OpenRaw(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, typ := range CreateTypes {
		t.Run(typ, func(t *testing.T) {
			dst := filepath.Join(dir, typ+".vmdk")
			var calls int
			if err := src.Clone(dst, CreateParams{Type: typ, Adapter: "lsilogic"}, func(done, total int64) { calls++ }); err != nil {
				t.Fatal(err)
			}
			if calls == 0 {
				t.Error("no progress reported")
			}
			if out := qemu(t, "qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, dst); !strings.Contains(out, "identical") {
				t.Errorf("qemu-img compare: %s", out)
			}
			if out := qemu(t, "qemu-img", "check", dst); !strings.Contains(out, "No errors") {
				t.Errorf("qemu-img check: %s", out)
			}
			if _, err := exec.LookPath("vmdkinfo"); err == nil {
				if out, err := exec.Command("vmdkinfo", dst).CombinedOutput(); err != nil {
					t.Errorf("vmdkinfo: %v\n%s", err, out)
				}
			}
			d, err := Open(dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, d.Size())
			d.ReadAt(got, 0)
			d.Close()
			if !bytes.Equal(got[:len(want)], want) {
				t.Error("reads back differently")
			}
		})
	}
	// A raw target is the disk's bytes.
	out := filepath.Join(dir, "out.raw")
	if err := src.Clone(out, CreateParams{Type: "raw"}, nil); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, out, raw)
}

// The same writes made by qemu-io on one copy of a qemu-made chain and by us on another leave chains
// that qemu-img compares identical; the base is never written.
func TestWritesMatchQemuIO(t *testing.T) {
	needTool(t, "qemu-io")
	type w struct {
		off  int64
		size int
		seed uint64
	}
	writes := []w{{40960, 8192, 1}, {65536 - 100, 200, 2}, {2 << 20, 65536, 3}, {5<<20 + 512, 1000, 4}, {6<<20 + 1024, 512, 5}, {0, 1, 6}}
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		for _, f := range []string{"mono-sparse.vmdk", "chain-child1.vmdk"} {
			b, _ := os.ReadFile(fixture(t, f))
			os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
	}
	baseBefore, _ := os.ReadFile(filepath.Join(dirs[1], "mono-sparse.vmdk"))
	for i, wr := range writes {
		data := make([]byte, wr.size)
		r := rand.New(rand.NewPCG(wr.seed, 0))
		for k := range data {
			data[k] = byte(r.Uint32())
		}
		f := filepath.Join(dirs[0], fmt.Sprintf("w%d", i))
		os.WriteFile(f, data, 0o644)
		qemu(t, "qemu-io", "-f", "vmdk", "-c", fmt.Sprintf("write -s %s %d %d", f, wr.off, wr.size), filepath.Join(dirs[0], "chain-child1.vmdk"))
		d, err := Open(filepath.Join(dirs[1], "chain-child1.vmdk"), Options{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := d.WriteAt(data, wr.off); err != nil || n != len(data) {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if out := qemu(t, "qemu-img", "compare", filepath.Join(dirs[0], "chain-child1.vmdk"), filepath.Join(dirs[1], "chain-child1.vmdk")); !strings.Contains(out, "identical") {
		t.Errorf("qemu-img compare: %s", out)
	}
	if out := qemu(t, "qemu-img", "check", filepath.Join(dirs[1], "chain-child1.vmdk")); !strings.Contains(out, "No errors") {
		t.Errorf("qemu-img check: %s", out)
	}
	baseAfter, _ := os.ReadFile(filepath.Join(dirs[1], "mono-sparse.vmdk"))
	if !bytes.Equal(baseBefore, baseAfter) {
		t.Error("the base of the chain was written")
	}
	// The child got a new CID, and the chain still opens (its parentCID is unchanged).
	d, err := Open(filepath.Join(dirs[1], "chain-child1.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.links[0].desc.CID == 0xb8e7e1d7 || d.links[0].exts[0].info().UncleanShutdown {
		t.Errorf("CID %08x unclean %v", d.links[0].desc.CID, d.links[0].exts[0].info().UncleanShutdown)
	}
}

// A child we create opens in qemu: qemu-io writes into it, and qemu reads the chain as we do.
func TestCreateChildQemu(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile(fixture(t, "stream.vmdk"))
	os.WriteFile(filepath.Join(dir, "base.vmdk"), b, 0o644)
	child := filepath.Join(dir, "child.vmdk")
	if err := CreateChild(filepath.Join(dir, "base.vmdk"), child, ""); err != nil {
		t.Fatal(err)
	}
	d, err := Open(child, Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(bytes.Repeat([]byte("ours"), 3000), 70000); err != nil {
		t.Fatal(err)
	}
	d.Close()
	qemu(t, "qemu-io", "-f", "vmdk", "-c", "write -P 0x77 300000 5000", child)
	if out := qemu(t, "qemu-img", "check", child); !strings.Contains(out, "No errors") {
		t.Errorf("qemu-img check: %s", out)
	}
	d, err = Open(child, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Info().NumLinks != 2 {
		t.Fatalf("%d links", d.Info().NumLinks)
	}
	ref, _ := os.Open(qemuRaw(t, child))
	defer ref.Close()
	compareReads(t, d, ref, d.Size(), 200, []int64{70000, 300000})
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"mono-sparse.vmdk", "stream.vmdk"} {
		b, _ := os.ReadFile(fixture(t, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	ro, err := Open(filepath.Join(dir, "mono-sparse.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.WriteAt([]byte("x"), 0); !errors.Is(err, ErrFileReadOnly) {
		t.Errorf("write to a read-only disk: %v", err)
	}
	ro.Close()
	w1, err := Open(filepath.Join(dir, "mono-sparse.vmdk"), Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(dir, "mono-sparse.vmdk"), Options{Writable: true}); !errors.Is(err, ErrFileAlreadyLocked) {
		t.Errorf("second writer: %v", err)
	}
	if _, err := w1.WriteAt([]byte("xy"), w1.Size()-1); !errors.Is(err, ErrDiskOutOfRange) {
		t.Errorf("write past the end: %v", err)
	}
	if err := w1.WriteMetadata("comment", "written by a test"); err != nil {
		t.Error(err)
	}
	w1.Close()
	if out := qemu(t, "qemu-img", "check", filepath.Join(dir, "mono-sparse.vmdk")); !strings.Contains(out, "No errors") {
		t.Errorf("qemu-img check after a metadata write: %s", out)
	}
	d, _ := Open(filepath.Join(dir, "mono-sparse.vmdk"), Options{})
	if d.Metadata()["comment"] != "written by a test" || d.Metadata()["adapterType"] != "ide" {
		t.Errorf("metadata %v", d.Metadata())
	}
	d.Close()
	st, err := Open(filepath.Join(dir, "stream.vmdk"), Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.WriteAt([]byte("x"), 0); !errors.Is(err, ErrDiskNotSupported) {
		t.Errorf("write to a stream: %v", err)
	}
	st.Close()
}

// FuzzWriteSequence applies random writes to a new sparse child and checks every byte against a model.
func FuzzWriteSequence(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 200, 100, 7, 9, 9, 9})
	f.Add(bytes.Repeat([]byte{0xff, 0x10, 0x80}, 20))
	base := f.TempDir()
	os.WriteFile(filepath.Join(base, "base.raw"), tinySparse("plain"), 0o644)
	f.Fuzz(func(t *testing.T, ops []byte) {
		dir := fuzzWorkDir(t)
		p := filepath.Join(dir, "d.vmdk")
		const size = 300 * 1024
		if err := Create(p, CreateParams{Type: TypeMonolithicSparse, Capacity: size}); err != nil {
			t.Fatal(err)
		}
		model := make([]byte, size)
		d, err := Open(p, Options{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		for len(ops) >= 3 {
			off := (int64(ops[0])<<8 | int64(ops[1])) * 7 % size
			n := min(int64(ops[2])*37+1, size-off)
			buf := bytes.Repeat([]byte{ops[2] ^ ops[0]}, int(n))
			if _, err := d.WriteAt(buf, off); err != nil {
				t.Fatal(err)
			}
			copy(model[off:], buf)
			ops = ops[3:]
		}
		d.Close()
		d, err = Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		got := make([]byte, size)
		d.ReadAt(got, 0)
		if !bytes.Equal(got, model) {
			t.Fatal("disk differs from the model")
		}
	})
}
