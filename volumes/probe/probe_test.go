package probe

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// Partitions of the mbr.img fixture (sfdisk layout in testdata/volumes/make.sh) with the filesystem
// mkfs wrote there. The volumes package compares all of them with blkid; this pins the unit.
var mbrParts = []struct {
	start, sectors int
	res            Result
}{
	{2048, 1024, Result{"fat12", "FAT12LBL", "1111-2222"}},
	{6144, 8192, Result{"ext3", "extthree", "33333333-1111-2222-3333-444455556666"}},
	{16384, 2048, Result{"swap", "swaplbl", "44444444-1111-2222-3333-444455556666"}},
	{32768, 67584, Result{"fat32", "FAT32LBL", "3333-4444"}},
	{102400, 32768, Result{"xfs", "xfslbl", "55555555-1111-2222-3333-444455556666"}},
}

func TestMBRFixture(t *testing.T) {
	img := testfix.Image(t, "mbr.img")
	for _, p := range mbrParts {
		part := img[p.start*512 : (p.start+p.sectors)*512]
		if got := Detect(testfix.NewDev(part), int64(len(part))); got != p.res {
			t.Errorf("partition at %d: %+v, want %+v", p.start, got, p.res)
		}
		// Truncated volumes must not be misread or panic.
		for _, n := range []int{0, 1, 511, 1100, 4096} {
			Detect(testfix.NewDev(part[:n]), int64(n))
		}
	}
	if got := Detect(testfix.NewDev(make([]byte, 1<<20)), 1<<20); got != (Result{}) {
		t.Errorf("zeros: %+v", got)
	}
}

func FuzzDetect(f *testing.F) {
	img := testfix.Image(f, "mbr.img")
	for _, start := range []int{2048, 6144, 16384, 20480, 26624, 32768, 102400} {
		f.Add(img[start*512 : start*512+128<<10])
	}
	f.Add(testfix.Image(f, "whole-iso.img"))
	f.Add(testfix.Image(f, "whole-squashfs.img"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Detect(testfix.NewDev(b), int64(len(b)))
	})
}
