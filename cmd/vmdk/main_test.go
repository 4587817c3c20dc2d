package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk"
)

func fixture(t *testing.T, name string) string {
	dir, _ := os.Getwd()
	return filepath.Join(dir, "..", "..", "testdata", "vddk", name)
}

func run(t *testing.T, out *os.File, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var buf, errBuf bytes.Buffer
	app.Writer, app.ErrWriter = &buf, &errBuf
	if out != nil {
		app.Writer = out
	}
	err := app.Run(append([]string{"vmdk"}, args...))
	return buf.String(), err
}

// vmdk cat of a three-link chain writes the bytes qemu-img convert writes, to a file and to a pipe.
func TestCat(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	for _, name := range []string{"chain-child2.vmdk", "stream.vmdk", "mono-flat.vmdk"} {
		disk := fixture(t, name)
		want := filepath.Join(t.TempDir(), "qemu.raw")
		if out, err := exec.Command("qemu-img", "convert", "-O", "raw", disk, want).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		wantBytes, _ := os.ReadFile(want)
		got := filepath.Join(t.TempDir(), "ours.raw")
		f, _ := os.Create(got)
		if _, err := run(t, f, "cat", disk); err != nil {
			t.Fatal(err)
		}
		f.Close()
		gotBytes, _ := os.ReadFile(got)
		if !bytes.Equal(gotBytes, wantBytes) {
			t.Errorf("%s: vmdk cat to a file differs from qemu-img convert", name)
		}
		r, w, _ := os.Pipe()
		done := make(chan []byte)
		go func() { b, _ := io.ReadAll(r); done <- b }()
		if _, err := run(t, w, "cat", disk); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if !bytes.Equal(<-done, wantBytes) {
			t.Errorf("%s: vmdk cat to a pipe differs from qemu-img convert", name)
		}
	}
}

func TestInfoAndBlocks(t *testing.T) {
	out, err := run(t, nil, "info", "--json", fixture(t, "chain-child2.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	var inf struct {
		vddk.Info
		Metadata map[string]string
	}
	if err := json.Unmarshal([]byte(out), &inf); err != nil {
		t.Fatal(err)
	}
	if inf.NumLinks != 3 || inf.Capacity != 6*1024*1024+1536 || inf.CreateType != "monolithicSparse" || inf.Metadata["adapterType"] != "ide" {
		t.Errorf("info: %+v", inf)
	}
	text, err := run(t, nil, "info", fixture(t, "split-sparse.vmdk"))
	if err != nil || !strings.Contains(text, "twoGbMaxExtentSparse") || !strings.Contains(text, "split-sparse-s002.vmdk") {
		t.Errorf("info text: %v\n%s", err, text)
	}
	out, err = run(t, nil, "blocks", "--json", fixture(t, "split-sparse.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []vddk.Block
	json.Unmarshal([]byte(out), &blocks)
	// qemu-io wrote 64 KiB across the 2 GiB extent edge and 100 KiB at 1 GiB.
	if len(blocks) != 2 || blocks[0].Offset != 1<<30/512 || blocks[1].Offset != (2<<30-32*1024)/512/128*128 {
		t.Errorf("blocks: %+v", blocks)
	}
	if _, err := run(t, nil, "info", filepath.Join(t.TempDir(), "none.vmdk")); err == nil {
		t.Error("info of a missing disk succeeded")
	}
}

// vmdk convert of a raw image with holes, to every type: qemu-img compares each result identical.
func TestConvertRaw(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	img := make([]byte, 3<<20+512)
	for i := 100000; i < 900000; i++ {
		img[i] = byte(i * 31)
	}
	copy(img[2<<20:], bytes.Repeat([]byte("guest text "), 5000))
	os.WriteFile(raw, img, 0o644)
	for _, typ := range vddk.CreateTypes {
		dst := filepath.Join(dir, typ+".vmdk")
		if _, err := run(t, nil, "convert", "-t", typ, raw, dst); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, dst).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "identical") {
			t.Errorf("%s: qemu-img compare: %v %s", typ, err, out)
		}
	}
	if _, err := run(t, nil, "convert", "-t", "nonsense", raw, filepath.Join(dir, "x.vmdk")); err == nil {
		t.Error("converted to an unknown type")
	}
	if _, err := run(t, nil, "create", "-s", "12Q", filepath.Join(dir, "y.vmdk")); err == nil {
		t.Error("accepted a size with an unknown suffix")
	}
}
