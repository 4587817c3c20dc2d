package squashfs

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// BenchmarkWalkRead walks a generated image of 4000 files (Lstat every entry, read every file whole)
// through our reader and through the kernel's loop mount of the same image. Both sides run warm:
// the kernel keeps its page cache, we keep our bounded caches.
func BenchmarkWalkRead(b *testing.B) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		b.Skip("mksquashfs not installed")
	}
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src")
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu")
	for i := range 4000 {
		dir := filepath.Join(src, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("s%d", i%7))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		var sb strings.Builder
		for sb.Len() < rng.IntN(32<<10) {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%04d.txt", i)), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	imgPath := filepath.Join(tmp, "bench.sqfs")
	if out, err := exec.Command("mksquashfs", src, imgPath, "-comp", "zstd", "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		b.Fatalf("mksquashfs: %v: %s", err, out)
	}
	img, err := os.ReadFile(imgPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ours", func(b *testing.B) {
		f, err := os.Open(imgPath)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		ours, err := Open(f, int64(len(img)))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			walkRead(b, ours)
		}
	})
	b.Run("kernel", func(b *testing.B) {
		mnt := mountImage(b, img)
		host := os.DirFS(mnt).(fs.ReadDirFS)
		b.ResetTimer()
		for b.Loop() {
			walkRead(b, host)
		}
	})
}

func walkRead(b *testing.B, fsys fs.FS) {
	n := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fl, err := fsys.Open(p)
			if err != nil {
				return err
			}
			defer fl.Close()
			if _, err := io.Copy(io.Discard, fl); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || n != 4000 {
		b.Fatalf("walked %d files: %v", n, err)
	}
}

var _ fsys.FS = (*FS)(nil)
