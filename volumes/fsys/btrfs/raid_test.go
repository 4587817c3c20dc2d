package btrfs

import (
	"fmt"
	"io/fs"
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
