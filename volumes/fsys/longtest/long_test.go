package longtest_test

import (
	"flag"
	"os"
	"testing"
	"time"
)

var long = flag.Bool("long", false, "build large generated images and compare every reader with an independent one (needs root, minutes)")

// TestGeneratedImages builds one large source tree, makes an image of it for every filesystem with the
// format's own tools and compares our reader with an independent reader of that image, entry by entry.
func TestGeneratedImages(t *testing.T) {
	if !*long {
		t.Skip("large generated comparison: run with -long")
	}
	if os.Geteuid() != 0 {
		t.Skip("loop and FUSE mounts and chown need root")
	}
	start := time.Now()
	tr := buildTree(t)
	t.Logf("source tree: %d entries, %d MiB of file data, built in %v", tr.entries, tr.bytes>>20, time.Since(start).Round(time.Millisecond))
	for _, c := range []struct {
		name    string
		compare func(*testing.T, *tree) int
	}{
		{"ext4", compareExt4},
		{"xfs", compareXFS},
		{"squashfs", compareSquashfs},
		{"iso9660", compareISO},
		{"ntfs", compareNTFS},
		{"exfat", compareExFAT},
		{"fat32", compareFAT32},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			n := c.compare(t, tr)
			if n < bigDirFiles && !t.Skipped() {
				t.Errorf("only %d entries compared: the image lost most of the tree", n)
			}
			t.Logf("%s: %d entries compared, image built and compared in %v", c.name, n, time.Since(start).Round(time.Millisecond))
		})
	}
}
