package exfat

import (
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestAgainstExfatFuse compares the whole fixture with exfat-fuse's view of it.
func TestAgainstExfatFuse(t *testing.T) {
	img := fixture(t)
	v := open(t, img)
	dir := mountFuse(t, img)
	// exfat-fuse reports whole seconds and a link count of 1 for every directory (the kernel driver,
	// which we follow, counts subdirectories); the root has no times on either side (the epoch on FUSE).
	diffs := treecmp.Compare(v, dir, treecmp.Options{TimeGranularity: time.Second, Ignore: treecmp.Nlink})
	for _, d := range diffs {
		if d.Path == "." && d.Field&treecmp.Times != 0 && d.Host == "1970-01-01T00:00:00Z" {
			continue
		}
		t.Error(d)
	}
}
