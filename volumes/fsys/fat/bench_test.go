package fat

import (
	"bytes"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// BenchmarkWalkAndRead opens the FAT32 fixture (about 3000 files, made by testdata/fat/make.sh), walks
// it and reads every file.
func BenchmarkWalkAndRead(b *testing.B) {
	img := fixture(b, "fat32")
	for b.Loop() {
		v, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			b.Fatal(err)
		}
		files, err := testfix.WalkAndRead(v)
		if err != nil || files < 2990 {
			b.Fatalf("walk: %d files, %v", files, err)
		}
		b.ReportMetric(float64(files), "files/op")
	}
}
