package exfat

import (
	"bytes"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// BenchmarkWalkAndRead opens the exFAT fixture (about 1000 files, made by testdata/fat/make.sh),
// walks it and reads every file.
func BenchmarkWalkAndRead(b *testing.B) {
	img := fixture(b)
	for b.Loop() {
		v, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			b.Fatal(err)
		}
		files, err := testfix.WalkAndRead(v)
		if err != nil || files < 1000 {
			b.Fatalf("walk: %d files, %v", files, err)
		}
		b.ReportMetric(float64(files), "files/op")
	}
}
