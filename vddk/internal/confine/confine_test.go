package confine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Each case runs through openat2 and through the component walk used where openat2 is missing.
func TestOpenBeneath(t *testing.T) {
	for _, walk := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "walk"}[walk], func(t *testing.T) {
			noOpenat2.Store(walk)
			defer noOpenat2.Store(false)
			testOpenBeneath(t, walk)
		})
	}
}

func testOpenBeneath(t *testing.T, walk bool) {
	top := t.TempDir()
	dir, out := filepath.Join(top, "in"), filepath.Join(top, "out")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.Mkdir(out, 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "f.bin"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(out, "secret"), []byte("outside"), 0o644)
	os.Symlink("sub/f.bin", filepath.Join(dir, "in.lnk"))
	os.Symlink("../out/secret", filepath.Join(dir, "out.lnk"))
	os.Symlink("/proc/self/fd/0", filepath.Join(dir, "magic.lnk"))
	os.Symlink(out, filepath.Join(dir, "outdir"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	read := func(rel string) (string, error) {
		f, err := d.Open(rel, os.O_RDONLY, false)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b := make([]byte, 16)
		n, _ := f.Read(b)
		return string(b[:n]), nil
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			panic("an open blocked")
		}
	}()
	defer close(done)
	for _, c := range []struct {
		rel  string
		want string
		err  error
	}{
		{"sub/f.bin", "inside", nil},
		{filepath.Join(dir, "sub/f.bin"), "inside", nil},
		{"sub/../sub/f.bin", "inside", nil},
		{"in.lnk", "inside", map[bool]error{false: nil, true: ErrOutside}[walk]}, // the walk takes no symlink
		{"out.lnk", "", ErrOutside},
		{"magic.lnk", "", ErrOutside},
		{"outdir/secret", "", ErrOutside},
		{"../out/secret", "", ErrOutside},
		{filepath.Join(out, "secret"), "", ErrOutside},
		{"fifo", "", ErrNotFile},
		{"sub", "", ErrNotFile},
		{"nope", "", fs.ErrNotExist},
	} {
		got, err := read(c.rel)
		if c.err == nil && (err != nil || got != c.want) || c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("%s: %q, %v; want %q, %v", c.rel, got, err, c.want, c.err)
		}
	}
	// Removing and renaming stay beneath the folder too.
	if err := d.Remove("outdir/secret"); !errors.Is(err, ErrOutside) {
		t.Errorf("remove through a symlinked folder: %v", err)
	}
	if err := d.Remove("out.lnk"); err != nil {
		t.Errorf("remove a symlink: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "secret")); err != nil {
		t.Errorf("the symlink's target went with it: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "other"), nil, 0o644)
	if err := Rename(d, "sub/f.bin", d, "other"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("rename over a file: %v", err)
	}
	if err := Rename(d, "sub/f.bin", d, "moved"); err != nil {
		t.Errorf("rename: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "moved")); err != nil {
		t.Error(err)
	}
}

// A block device opens only when allowed; a FIFO never, and without blocking.
func TestDevices(t *testing.T) {
	dir := t.TempDir()
	blk := filepath.Join(dir, "blk")
	if err := syscall.Mknod(blk, syscall.S_IFBLK|0o600, 7<<8); err != nil {
		t.Skipf("mknod: %v", err)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Open("blk", os.O_RDONLY, false); !errors.Is(err, ErrNotFile) {
		t.Errorf("block device without permission: %v", err)
	}
	f, err := d.Open("blk", os.O_RDONLY, true)
	if err == nil {
		f.Close()
	} else if !errors.Is(err, syscall.ENXIO) && !errors.Is(err, syscall.ENODEV) {
		t.Errorf("block device with permission: %v", err)
	}
	if _, err := OpenPath("/dev/null", os.O_RDONLY, true); !errors.Is(err, ErrNotFile) {
		t.Errorf("character device: %v", err)
	}
}
