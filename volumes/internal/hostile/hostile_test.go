package hostile

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func image(t *testing.T, dir, name string) []byte {
	t.Helper()
	return testfix.Gunzip(t, dir, name+".gz")
}

// The checksum repairs must reproduce what mkfs.exfat, mkfs.xfs (and the kernel) and lvm2 wrote on the
// undamaged images; otherwise every "repaired" case would stop at a checksum error and test nothing.
func TestChecksumRepairsMatchTheTools(t *testing.T) {
	if same, _ := reapplyFixes(t, "exfat.img", exfatPlan); !same {
		t.Error("exFAT: the boot-region or entry-set checksum differs from mkfs.exfat's")
	}
	if same, fixed := reapplyFixes(t, "xfs.img", xfsPlan); fixed < 3 || !same {
		t.Errorf("XFS: %d inode CRCs redone; the superblock or an inode CRC differs from the kernel's", fixed)
	}
	if same, fixed := reapplyFixes(t, "btrfs.img", btrfsPlan); fixed < 5 || !same {
		t.Errorf("Btrfs: %d tree blocks redone; the superblock or a tree block crc32c differs from mkfs.btrfs's and the kernel's", fixed)
	}

	for _, n := range []string{"lvm-d0.img", "lvm-d1.img", "lvm-d2.img"} {
		d := image(t, "volumes", n)
		areas := lvmAreas(d)
		if len(areas) == 0 {
			t.Fatalf("%s: no metadata area", n)
		}
		for _, a := range areas {
			h := a - 4
			if got, want := lvmCRC(d[a:h+512]), binary.LittleEndian.Uint32(d[h:]); got != want {
				t.Errorf("%s: area header CRC %08x, lvm2 wrote %08x", n, got, want)
			}
			off, size := binary.LittleEndian.Uint64(d[h+40:]), binary.LittleEndian.Uint64(d[h+48:])
			text := d[h+int64(off) : h+int64(off+size)]
			if got, want := lvmCRC(text), binary.LittleEndian.Uint32(d[h+56:]); got != want {
				t.Errorf("%s: text CRC %08x, lvm2 wrote %08x", n, got, want)
			}
		}
	}
}

// reapplyFixes runs a plan's superblock and record checksum repairs on its undamaged image from
// testdata/hostile and says whether the image kept the bytes the tools wrote, and how many record
// repairs ran.
func reapplyFixes(t *testing.T, name string, plan func(*Image) (fsPlan, error)) (same bool, fixed int) {
	t.Helper()
	b := image(t, "hostile", name)
	p, err := plan(New(b))
	if err != nil {
		t.Fatal(err)
	}
	im := New(b)
	p.fixSuper(im)
	for _, r := range p.records {
		if r.fix != nil {
			r.fix(im)
			fixed++
		}
	}
	return bytes.Equal(im.Bytes(0, len(b)), b), fixed
}

// An Image reads as the base with its patches applied in order and cut at its length, whether the
// base is whole or kept as non-zero chunks.
func TestImageReadsItsPatches(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	base := make([]byte, 300<<10)
	for i := 100 << 10; i < 170<<10; i++ { // one data run; the rest stays zero, as holes
		base[i] = byte(r.Intn(256))
	}
	sparse, err := NewSparse(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	if len(sparse.chunks) != 2 {
		t.Errorf("%d non-zero chunks kept, want 2", len(sparse.chunks))
	}
	for _, start := range []*Image{New(base), sparse} {
		want := append([]byte(nil), base...)
		im := start.Clone()
		for k := 0; k < 50; k++ {
			off := r.Intn(len(base) - 100)
			data := make([]byte, 1+r.Intn(99))
			r.Read(data)
			im.Put(int64(off), data)
			copy(want[off:], data)
		}
		cut := int64(250 << 10)
		im = im.Truncated(cut)
		want = want[:cut]
		for k := 0; k < 200; k++ {
			off := r.Int63n(cut + 1000)
			p := make([]byte, r.Intn(150<<10))
			n, err := im.ReadAt(p, off)
			end := min(off+int64(len(p)), cut)
			if off >= cut {
				if n != 0 || err != io.EOF {
					t.Fatalf("read at %d past the %d-byte end: %d, %v", off, cut, n, err)
				}
				continue
			}
			if int64(n) != end-off || !bytes.Equal(p[:n], want[off:end]) {
				t.Fatalf("read of %d at %d: %d bytes, not the patched base", len(p), off, n)
			}
			if (end < off+int64(len(p))) != (err == io.EOF) {
				t.Fatalf("read of %d at %d: error %v", len(p), off, err)
			}
		}
		if !bytes.Equal(start.Bytes(0, len(base)), base) {
			t.Fatal("patching a clone changed the image it came from")
		}
	}
}

// The journal and log checksum repairs must reproduce what the kernel wrote on the live snapshots:
// otherwise every "repaired" journal case would stop at a checksum and reach nothing behind it.
func TestJournalRepairsMatchTheKernel(t *testing.T) {
	e := image(t, "hostile", "ext4-dirty.img")
	j, err := findJBD(New(e))
	if err != nil {
		t.Fatal(err)
	}
	im := New(e)
	j.fixSuper(im)
	for _, d := range append(append([]int64(nil), j.descs...), j.revokes...) {
		j.fixTail(im, d)
	}
	for _, c := range j.commit {
		j.fixCommit(im, c)
	}
	if !bytes.Equal(im.Bytes(0, len(e)), e) {
		t.Error("ext4: a journal superblock, descriptor, revoke or commit checksum differs from the kernel's")
	}
	t.Logf("ext4 journal: %d descriptors, %d commits, %d revoke blocks from block %d", len(j.descs), len(j.commit), len(j.revokes), j.start)

	x := image(t, "hostile", "xfs-dirty.img")
	l, err := findXlog(New(x))
	if err != nil {
		t.Fatal(err)
	}
	xi := New(x)
	for _, r := range l.recs[1:] { // mkfs.xfs writes its unmount record at BB 0 without a CRC
		l.fixRecord(xi, r)
	}
	if !bytes.Equal(xi.Bytes(0, len(x)), x) {
		t.Error("XFS: a log record CRC differs from the kernel's")
	}
	t.Logf("XFS log: %d records before the head", len(l.recs))
	for _, kind := range []string{"ext4-dirty", "xfs-dirty"} {
		cs, err := JournalCases(kind, image(t, "hostile", kind+".img"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d cases", kind, len(cs))
	}
}
