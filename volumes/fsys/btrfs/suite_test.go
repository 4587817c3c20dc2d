package btrfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestHostileNamedCases holds the named cases of the hostile suite's Btrfs family (which checks every
// case only for panics, hangs and allocation) to the outcome each must have: a clean ErrCorrupt naming
// the damage, or, for a device count of 2^32, a filesystem that reads normally with bounded memory.
func TestHostileNamedCases(t *testing.T) {
	cases, err := hostile.FilesystemCases("btrfs", testfix.Gunzip(t, "hostile", "btrfs.img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]hostile.Case{}
	for _, c := range cases {
		byName[strings.TrimPrefix(c.Name, "btrfs/")] = c
	}
	open := func(t *testing.T, name string) (fs.FS, error) {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("no case %q", name)
		}
		return Open(c.Disks[0], c.Disks[0].Size())
	}
	readAll := func(f fs.FS) error {
		return fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				_, err = fs.ReadFile(f, p)
			}
			return err
		})
	}
	wantCorrupt := func(t *testing.T, err error, what string) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), what) {
			t.Errorf("error %v, want ErrCorrupt naming %q", err, what)
		}
	}
	for _, name := range []string{"unchanged", "num_devices=2^32", "num_devices=2^64-1"} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f, err := open(t, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := readAll(f); err != nil {
				t.Fatal(err)
			}
			b, err := fs.ReadFile(f, "zstd.txt")
			if err != nil || len(b) != 200000 || !bytes.HasPrefix(b, []byte("a compressible line of zstd.txt\n")) {
				t.Errorf("zstd.txt: %d bytes, %v", len(b), err)
			}
			runtime.ReadMemStats(&after)
			if a := after.TotalAlloc - before.TotalAlloc; a > 16<<20 {
				t.Errorf("allocated %d MiB", a>>20)
			}
		})
	}
	t.Run("fs-tree-loop", func(t *testing.T) {
		f, err := open(t, "fs-tree-loop")
		if err == nil {
			_, err = fs.ReadDir(f, ".")
		}
		wantCorrupt(t, err, "level")
	})
	t.Run("keys-out-of-order", func(t *testing.T) {
		f, err := open(t, "keys-out-of-order")
		if err == nil {
			err = readAll(f)
		}
		wantCorrupt(t, err, "out of order")
	})
	t.Run("sys-chunk-past-disk", func(t *testing.T) {
		_, err := open(t, "sys-chunk-past-disk")
		wantCorrupt(t, err, "past its")
	})
	t.Run("chunk-past-disk", func(t *testing.T) {
		// The chunk that holds the root tree, moved past the end of the disk.
		f, err := open(t, "unchanged")
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.(*FS).cm.find(f.(*FS).sb.root)
		if err != nil {
			t.Fatal(err)
		}
		_, err = open(t, fmt.Sprintf("chunk@%d-past-disk", c.logical))
		wantCorrupt(t, err, "past its")
	})
	t.Run("data fails its checksum", func(t *testing.T) {
		// One byte of big.bin's data inverted on the disk: the read fails as damage (one copy only).
		f, err := open(t, "unchanged")
		if err != nil {
			t.Fatal(err)
		}
		g := f.(*FS)
		ip, _, err := g.Resolve("open", "big.bin", false)
		if err != nil {
			t.Fatal(err)
		}
		r := &fileReader{f: g, ip: ip}
		if err := r.load(); err != nil || len(r.ext) == 0 || r.ext[0].disk == 0 {
			t.Fatalf("big.bin extents %v, %v", r.ext, err)
		}
		c, err := g.cm.find(r.ext[0].disk + 5000)
		if err != nil {
			t.Fatal(err)
		}
		copies, _ := c.place(r.ext[0].disk + 5000 - c.logical)
		img := byName["unchanged"].Disks[0]
		bad := &damaged{r: img, ranges: [][2]int64{{int64(copies[0].offset), int64(copies[0].offset) + 1}}}
		h, err := Open(bad, img.Size())
		if err != nil {
			t.Fatal(err)
		}
		_, err = fs.ReadFile(h, "big.bin")
		wantCorrupt(t, err, "fails its checksum")
		if b, err := fs.ReadFile(h, "hello.txt"); err != nil || string(b) != "hello, hostile world\n" {
			t.Errorf("hello.txt: %q, %v", b, err)
		}
	})
	t.Run("unknown compression", func(t *testing.T) {
		// compression, encryption and other-encoding bytes of zstd.txt's first extent all ones
		f, err := open(t, "zstd.txt-extent+16=ffffffff")
		if err != nil {
			t.Fatal(err)
		}
		_, err = fs.ReadFile(f, "zstd.txt")
		if !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("zstd.txt: %v, want an unsupported-content error (EOPNOTSUPP)", err)
		}
	})
	t.Run("zstd-inflates-past-its-size", func(t *testing.T) {
		f, err := open(t, "zstd-inflates-past-its-size")
		if err != nil {
			t.Fatal(err)
		}
		_, err = fs.ReadFile(f, "zstd.txt")
		if err == nil || !strings.Contains(err.Error(), "inflates past") {
			t.Errorf("zstd.txt: %v, want an extent that inflates past its size", err)
		}
	})
}
