package exfat

import (
	"bytes"
	"io"
	"io/fs"
	"testing"
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
		files := 0
		err = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fl, err := v.Open(p)
			if err != nil {
				return err
			}
			defer fl.Close()
			files++
			_, err = io.Copy(io.Discard, fl)
			return err
		})
		if err != nil || files < 1000 {
			b.Fatalf("walk: %d files, %v", files, err)
		}
		b.ReportMetric(float64(files), "files/op")
	}
}
