package ext4

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWalk walks a big image (EXT4_BENCH_IMAGE) with our reader and the kernel's mount of it
// (EXT4_BENCH_MOUNT), each iteration from a cold page cache: lstat every entry, read every file.
// bench/ext4-walk.sh builds the image from /usr/share, mounts it and prints the ratio.
func BenchmarkWalk(b *testing.B) {
	img, mnt := os.Getenv("EXT4_BENCH_IMAGE"), os.Getenv("EXT4_BENCH_MOUNT")
	if img == "" || mnt == "" {
		b.Skip("set EXT4_BENCH_IMAGE and EXT4_BENCH_MOUNT (see bench/ext4-walk.sh)")
	}
	buf := make([]byte, 128<<10)
	b.Run("kernel", func(b *testing.B) {
		var files, bytes int64
		for b.Loop() {
			b.StopTimer()
			dropCaches(b)
			b.StartTimer()
			files, bytes = walkHost(b, mnt, buf)
		}
		b.ReportMetric(float64(files), "files")
		b.ReportMetric(float64(bytes), "bytes")
	})
	b.Run("ours", func(b *testing.B) {
		var files, bytes int64
		for b.Loop() {
			b.StopTimer()
			dropCaches(b)
			b.StartTimer()
			f, err := os.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			st, _ := f.Stat()
			v, err := OpenWith(f, st.Size(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			files, bytes = walkOurs(b, v, buf)
			f.Close()
		}
		b.ReportMetric(float64(files), "files")
		b.ReportMetric(float64(bytes), "bytes")
	})
}

func dropCaches(b *testing.B) {
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		b.Fatalf("dropping the page cache (needs root): %v", err)
	}
}

func walkHost(b *testing.B, root string, buf []byte) (files, total int64) {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf)
			f.Close()
			files, total = files+1, total+n
			return err
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return files, total
}

func walkOurs(b *testing.B, v *FS, buf []byte) (files, total int64) {
	err := fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := v.Open(p)
			if err != nil {
				return err
			}
			n, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf)
			f.Close()
			files, total = files+1, total+n
			return err
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return files, total
}

// onlyReader hides WriterTo/ReaderFrom so both sides copy through the same buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
