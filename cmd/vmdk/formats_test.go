package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func qemu(t *testing.T, args ...string) {
	t.Helper()
	if b, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, b)
	}
}

// Every command takes the other formats: cat writes what qemu-img convert writes, info names the
// format and the allocation, blocks and check run, and convert makes a VMDK (or raw image) with the
// same content (the Hyper-V to VMware path).
func TestOtherFormats(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	b := make([]byte, 6<<20)
	for i := range b[1<<20 : 3<<20] {
		b[1<<20+i] = byte(i * 7 / 5)
	}
	os.WriteFile(src, b, 0o644)
	for _, f := range []struct{ qemuFmt, opts, format string }{
		{"qcow2", "compression_type=zstd", "qcow2"}, {"vpc", "subformat=fixed", "vhd"}, {"vpc", "subformat=dynamic", "vhd"},
		{"vhdx", "block_size=1M", "vhdx"}, {"vdi", "static=off", "vdi"},
	} {
		t.Run(f.qemuFmt+"-"+f.opts, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk."+f.format)
			args := []string{"convert", "-O", f.qemuFmt, "-o", f.opts}
			if f.format == "qcow2" {
				args = append(args, "-c")
			}
			qemu(t, append(args, src, disk)...)
			ref := filepath.Join(t.TempDir(), "ref.raw") // VHD sizes round up to a geometry
			qemu(t, "convert", "-f", f.qemuFmt, "-O", "raw", disk, ref)
			want, _ := os.ReadFile(ref)
			out := filepath.Join(t.TempDir(), "cat.raw")
			o, _ := os.Create(out)
			if _, err := run(t, o, "cat", disk); err != nil {
				t.Fatal(err)
			}
			o.Close()
			if got, _ := os.ReadFile(out); !bytes.Equal(got, want) || !bytes.Equal(got[:len(b)], b) {
				t.Errorf("vmdk cat differs from qemu-img convert (%d bytes, want %d)", len(got), len(want))
			}
			js, err := run(t, nil, "info", "--json", disk)
			if err != nil {
				t.Fatal(err)
			}
			var inf struct {
				Format    string
				Capacity  int64
				Allocated int64
			}
			json.Unmarshal([]byte(js), &inf)
			if inf.Format != f.format || inf.Capacity != int64(len(want)) || inf.Allocated < 2<<20 || inf.Allocated > int64(len(want)) {
				t.Errorf("info: %+v", inf)
			}
			if txt, err := run(t, nil, "info", disk); err != nil || !strings.Contains(strings.Join(strings.Fields(txt), " "), "file format: "+f.format+" ") {
				t.Errorf("info: %v\n%s", err, txt)
			}
			if _, err := run(t, nil, "blocks", disk); err != nil {
				t.Error(err)
			}
			if txt, err := run(t, nil, "check", disk); err != nil || !strings.Contains(txt, "No errors") {
				t.Errorf("check: %v %s", err, txt)
			}
			for _, typ := range []string{"monolithicSparse", "streamOptimized", "raw"} {
				dst := filepath.Join(t.TempDir(), "out."+typ)
				if _, err := run(t, nil, "convert", "-t", typ, disk, dst); err != nil {
					t.Fatalf("convert to %s: %v", typ, err)
				}
				qemu(t, "compare", "-f", "raw", ref, dst)
			}
		})
	}
}
