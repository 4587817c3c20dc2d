package volumes

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk"
)

// OpenFiles takes every virtual disk format vddk reads and finds the same volumes, with the same
// bytes, as in the raw image the disk was converted from: the volumes layer sees only a disk.
func TestOpenFilesOtherFormats(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	raw := fixture(t, "gpt512.img")
	want := open(t, raw)
	for _, f := range []struct{ qemuFmt, opts, ext string }{
		{"qcow2", "compression_type=zstd", "qcow2"}, {"vpc", "subformat=fixed", "vhd"}, {"vpc", "subformat=dynamic", "vhd"},
		{"vhdx", "block_size=1M", "vhdx"}, {"vdi", "static=off", "vdi"},
	} {
		t.Run(f.qemuFmt+"-"+f.opts, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "disk."+f.ext)
			tool(t, "qemu-img", "convert", "-O", f.qemuFmt, "-o", f.opts, raw, p)
			set, closer, err := OpenFiles([]string{p}, vddk.Options{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			if got, exp := ids(set.Volumes()), ids(want.Volumes()); got != exp {
				t.Fatalf("volumes %q, want %q", got, exp)
			}
			for _, v := range want.Volumes() {
				g, _ := set.Volume(v.ID)
				if g.Filesystem.Type != v.Filesystem.Type || !bytes.Equal(readAll(t, g), readAll(t, v)) {
					t.Errorf("%s differs: %s vs %s", v.ID, g.Filesystem.Type, v.Filesystem.Type)
				}
			}
		})
	}
	// A container vmdkmount does not read is refused by name, never mounted as a raw disk.
	e01 := filepath.Join(t.TempDir(), "disk.E01")
	tool(t, "sh", "-c", `printf 'EVF\011\015\012\377\000\001' > "$0"; head -c 4096 /dev/zero >> "$0"`, e01)
	if _, _, err := OpenFiles([]string{e01}, vddk.Options{}, Options{}); err == nil || err.Error() != e01+": an EWF (E01) image, which vmdkmount does not read" {
		t.Errorf("E01: %v", err)
	}
}
