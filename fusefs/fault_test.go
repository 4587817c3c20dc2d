package fusefs_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/vddk"
)

// failingReader fails reads that touch [badFrom, badTo), counting them; as a volumes.Disk it holds
// data.
type failingReader struct {
	data           []byte
	badFrom, badTo int64
	faults         atomic.Int64 // reads refused
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off < f.badTo && off+int64(len(p)) > f.badFrom {
		f.faults.Add(1)
		return 0, errors.New("simulated medium error")
	}
	if off < 0 || off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *failingReader) Size() int64 { return int64(len(f.data)) }

// An I/O error under the mount reaches the reading program as EIO, and everything else keeps working:
// a failing reader, and a flat extent truncated under a live mount.
func TestIOErrorsBecomeEIO(t *testing.T) {
	needMounts(t)
	dir := t.TempDir()
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	bad := &failingReader{data: data, badFrom: 1 << 20, badTo: 1<<20 + 4096}
	// A monolithicFlat disk whose flat file we truncate while mounted.
	flatDisk := filepath.Join(dir, "flat.vmdk")
	if err := vddk.Create(flatDisk, vddk.CreateParams{Type: vddk.TypeMonolithicFlat, Capacity: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "flat-flat.vmdk"), data, 0o644)
	d, err := vddk.Open(flatDisk, vddk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	srv, err := fusefs.Mount(mnt, &fusefs.Layout{Raw: []fusefs.RawSource{
		{Name: "failing", R: bad, Size: int64(len(data))},
		{Name: "flat", R: d, Size: d.Size()},
	}}, fusefs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()
	f, err := os.Open(filepath.Join(mnt, "raw", "failing"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 8192)
	if _, err := f.ReadAt(buf, 1<<20); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of the failing range: %v, want EIO", err)
	}
	if n, err := f.ReadAt(buf, 3<<20); err != nil || n != len(buf) || buf[1] != data[3<<20+1] {
		t.Errorf("read elsewhere after the failure: %d %v", n, err)
	}
	if bad.faults.Load() == 0 {
		t.Error("the EIO did not come from the injected fault")
	}
	// Truncate the flat file under the live mount: reads past the new end fail, the rest still reads.
	if err := os.Truncate(filepath.Join(dir, "flat-flat.vmdk"), 2<<20); err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(filepath.Join(mnt, "raw", "flat"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.ReadAt(buf, 3<<20); !errors.Is(err, syscall.EIO) {
		t.Errorf("read past the truncated end: %v, want EIO", err)
	}
	if n, err := g.ReadAt(buf, 4096); err != nil || n != len(buf) || buf[5] != data[4096+5] {
		t.Errorf("read before the truncated end: %d %v", n, err)
	}
	if _, err := os.ReadDir(filepath.Join(mnt, "raw")); err != nil {
		t.Errorf("the mount stopped serving: %v", err)
	}
}
