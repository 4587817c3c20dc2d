package btrfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestProfiles makes RAID5, RAID6, RAID1C3 and RAID1C4 filesystems over sparse images on loop
// devices with mkfs.btrfs and the kernel (with the checksum types other than crc32c), and compares
// our tree with the kernel's ro,subvolid=5 mount: first with every device, then with devices left out
// of the set, against the kernel's ro,degraded mount of the same remaining devices, so reads rebuild
// from parity or take the copies left.
func TestProfiles(t *testing.T) {
	need(t, "mkfs.btrfs", "btrfs", "mount", "losetup")
	for _, c := range []struct {
		profile, csum string
		n             int
		drops         [][]int // device indexes left out, one degraded comparison each
		want          []string
	}{
		// One of the two RAID6 drops takes two neighbours in the rotation, the other two opposite.
		{"raid5", "sha256", 3, [][]int{{1}}, []string{"data from P"}},
		{"raid6", "crc32c", 4, [][]int{{0, 1}, {0, 2}}, []string{"data from P", "data from Q", "two data from P and Q"}},
		{"raid1c3", "xxhash", 3, [][]int{{0, 2}}, nil},
		{"raid1c4", "blake2", 4, [][]int{{1, 2, 3}}, nil},
	} {
		t.Run(c.profile, func(t *testing.T) {
			dir := t.TempDir()
			imgs, loops := testfix.LoopDevices(t, dir, c.n, 128<<20)
			run(t, "mkfs.btrfs", append([]string{"-q", "-f", "-L", c.profile, "--csum", c.csum, "-d", c.profile, "-m", c.profile}, loops...)...)
			mnt := filepath.Join(dir, "mnt")
			os.Mkdir(mnt, 0o755)
			mount := func(opts string, devs []string) {
				for _, l := range devs[1:] {
					opts += ",device=" + l
				}
				run(t, "mount", "-o", opts, devs[0], mnt)
			}
			mount("noatime", loops)
			populateSmall(t, mnt)
			testfix.Unmount(t, mnt)

			mount("ro,noatime,subvolid=5", loops)
			all := compareSet(t, imgs, mnt, 0)
			checkFirstCopyDamaged(t, all, imgs, mnt)
			if got := all.sb.csumType; got != map[string]uint16{"crc32c": csumCRC32C, "xxhash": csumXXHash, "sha256": csumSHA256, "blake2": csumBlake2}[c.csum] {
				t.Errorf("checksum type %d, made with %s", got, c.csum)
			}
			testfix.Unmount(t, mnt)
			seen := map[string]int{}
			for _, drop := range c.drops {
				var keep, keepImgs []string
				for i := range loops {
					if !slices.Contains(drop, i) {
						keep, keepImgs = append(keep, loops[i]), append(keepImgs, imgs[i])
						continue
					}
					// The kernel must not find the left-out device on its list of scanned ones.
					run(t, "btrfs", "device", "scan", "--forget", loops[i])
				}
				mount("ro,noatime,degraded,subvolid=5", keep)
				f := compareSet(t, keepImgs, mnt, len(keep))
				for k, n := range rebuildKinds(t, f) {
					seen[k] += n
				}
				testfix.Unmount(t, mnt)
			}
			for _, k := range c.want {
				if seen[k] == 0 {
					t.Errorf("no file data was read as %q (%v)", k, seen)
				}
			}
		})
	}
}

// compareSet opens the images as one filesystem and compares it with the kernel's mount at mnt;
// with devs > 0 it first checks that the kernel mounted that many devices, not more.
func compareSet(t *testing.T, imgs []string, mnt string, devs int) *FS {
	t.Helper()
	return compareDevices(t, openImages(t, imgs), mnt, devs)
}

func openImages(t *testing.T, imgs []string) []Device {
	var ds []Device
	for _, img := range imgs {
		fi, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fi.Close() })
		st, _ := fi.Stat()
		ds = append(ds, Device{R: fi, Size: st.Size()})
	}
	return ds
}

func compareDevices(t *testing.T, ds []Device, mnt string, devs int) *FS {
	t.Helper()
	f, err := OpenDevices(ds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if devs > 0 {
		ents, err := os.ReadDir(filepath.Join("/sys/fs/btrfs", f.Usage().UUID, "devices"))
		if err != nil || len(ents) != devs {
			t.Fatalf("the kernel mounted %d devices (%v), want %d", len(ents), err, devs)
		}
	}
	for _, d := range treecmp.Compare(f, mnt, treecmp.Options{MaxDiffs: 30}) {
		t.Error(d)
	}
	return f
}

// damaged reads a device with every byte of some ranges inverted.
type damaged struct {
	r      io.ReaderAt
	ranges [][2]int64
}

func (d *damaged) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.r.ReadAt(p, off)
	for _, rg := range d.ranges {
		for i := max(rg[0], off); i < min(rg[1], off+int64(n)); i++ {
			p[i-off] ^= 0xff
		}
	}
	return n, err
}

// checkFirstCopyDamaged inverts, on the device of every chunk's first stripe (data, metadata and
// system), that stripe's bytes, and compares the tree read through the damage with the kernel's mount:
// every tree block, and every data sector by its checksum, must come from its other copies, or be
// rebuilt from parity. On RAID6 the root tree's block
// loses its element and P instead, so it must be rebuilt from Q.
func checkFirstCopyDamaged(t *testing.T, f *FS, imgs []string, mnt string) {
	ds := openImages(t, imgs)
	byID := map[uint64]int{}
	for i, d := range ds {
		sb, err := readSuper(d.R, d.Size)
		if err != nil {
			t.Fatal(err)
		}
		byID[sb.devid] = i
	}
	dmg := make([]*damaged, len(ds))
	for i := range ds {
		dmg[i] = &damaged{r: ds[i].R}
		ds[i].R = dmg[i]
	}
	for _, c := range f.cm.chunks {
		n := uint64(len(c.stripes))
		perDev := c.length
		switch {
		case c.typ&bgRAID5 != 0:
			perDev = c.length / (n - 1)
		case c.typ&bgRAID6 != 0:
			perDev = c.length / (n - 2)
		}
		s := c.stripes[0]
		d := dmg[byID[s.devid]]
		rootRow := ^uint64(0)
		if off := f.sb.root - c.logical; c.typ&bgRAID6 != 0 && f.sb.root >= c.logical && off < c.length {
			// The root tree's block loses its own element and P, so it is rebuilt from Q; the first
			// stripe is left whole in that row, which must keep Q and one data element intact.
			data := n - 2
			nr := off / c.stripeLen
			rootRow = nr / data
			for _, e := range []uint64{nr % data, data} {
				se := c.stripes[(rootRow+e)%n]
				at := int64(se.offset + rootRow*c.stripeLen)
				dmg[byID[se.devid]].ranges = append(dmg[byID[se.devid]].ranges, [2]int64{at, at + int64(c.stripeLen)})
			}
		}
		for r := uint64(0); r < perDev/c.stripeLen; r++ {
			if r != rootRow {
				at := int64(s.offset + r*c.stripeLen)
				d.ranges = append(d.ranges, [2]int64{at, at + int64(c.stripeLen)})
			}
		}
	}
	fromQ := &countCopies{copy: 2}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(fromQ))
	g := compareDevices(t, ds, mnt, 0)
	if f.cm.chunks[len(f.cm.chunks)-1].typ&bgRAID6 != 0 && fromQ.n == 0 {
		t.Error("no tree block was rebuilt from Q")
	}
	b := make([]byte, g.sb.nodeSize)
	if err := g.cm.readMirror(b, g.sb.chunkRoot, 0); err == nil && g.checkBlock(b, g.sb.chunkRoot, g.sb.chunkLevel) == nil {
		t.Error("the chunk tree's root reads intact from its first copy: the damage missed it")
	}
}

// populateSmall writes files that span many stripe rows (random, so incompressible, and text under
// zstd), small inline files, a hard link, a symlink and a subvolume.
func populateSmall(t *testing.T, mnt string) {
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 6; i++ {
		b := make([]byte, 300<<10*(i+1)+i*4099)
		rng.Read(b)
		write(t, filepath.Join(mnt, fmt.Sprintf("d%d", i%2), fmt.Sprintf("r%d.bin", i)), b)
	}
	run(t, "mount", "-o", "remount,compress-force=zstd", mnt)
	write(t, filepath.Join(mnt, "z", "text.txt"), text(1, 900<<10))
	run(t, "mount", "-o", "remount,compress=no", mnt)
	for i := 0; i < 40; i++ {
		write(t, filepath.Join(mnt, "small", fmt.Sprintf("s%02d", i)), []byte(strings.Repeat("inline ", i+1)))
	}
	os.Link(filepath.Join(mnt, "small", "s01"), filepath.Join(mnt, "hard"))
	os.Symlink("d0/r0.bin", filepath.Join(mnt, "link"))
	run(t, "btrfs", "subvolume", "create", filepath.Join(mnt, "sub"))
	write(t, filepath.Join(mnt, "sub", "in-sub.bin"), text(2, 200<<10))
}

// rebuildKinds counts, over the stripe elements that hold the regular files' data of a RAID5/6
// filesystem opened without some devices, how each element is read: from its device, or rebuilt
// from which parity.
func rebuildKinds(t *testing.T, f *FS) map[string]int {
	kinds := map[string]int{}
	eachExtent(t, f, func(e extent) {
		for off := e.disk; off < e.disk+e.diskLen; {
			c, err := f.cm.find(off)
			if err != nil {
				t.Fatal(err)
			}
			if c.typ&(bgRAID5|bgRAID6) == 0 {
				return
			}
			n := uint64(len(c.stripes))
			data := n - c.parityCount()
			nr := (off - c.logical) / c.stripeLen
			row, k := nr/data, nr%data
			absent := func(i uint64) bool { _, ok := f.cm.devs[c.stripes[(row+i)%n].devid]; return !ok }
			lostData := 0
			for j := uint64(0); j < data; j++ {
				if absent(j) {
					lostData++
				}
			}
			switch {
			case !absent(k):
				kinds["direct"]++
			case lostData == 2:
				kinds["two data from P and Q"]++
			case !absent(data):
				kinds["data from P"]++
			default:
				kinds["data from Q"]++
			}
			off = c.logical + (nr+1)*c.stripeLen
		}
	})
	return kinds
}

// eachExtent calls fn for every extent of every regular file of f.
func eachExtent(t *testing.T, f *FS, fn func(extent)) {
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		ip, _, err := f.Resolve("open", p, false)
		if err != nil {
			return err
		}
		r := &fileReader{f: f, ip: ip}
		if err := r.load(); err != nil {
			return err
		}
		for _, e := range r.ext {
			fn(e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countCopies counts the log records of tree blocks read from another copy, that copy.
type countCopies struct {
	copy int64
	n    int
}

func (h *countCopies) Enabled(context.Context, slog.Level) bool { return true }
func (h *countCopies) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countCopies) WithGroup(string) slog.Handler            { return h }
func (h *countCopies) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "copy" && a.Value.Int64() == h.copy && strings.Contains(r.Message, "another copy") {
			h.n++
		}
		return true
	})
	return nil
}
