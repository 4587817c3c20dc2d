package btrfs

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// BenchmarkReadAll reads every file of a Btrfs made by the kernel (2000 small and 20 large files,
// half under zstd, half plain) with data checksums verified and with the checksum tree ignored: the
// ratio of the two is what verification costs (caches dropped before each pass).
func BenchmarkReadAll(b *testing.B) {
	need(b, "mkfs.btrfs", "mount")
	img, mnt := testfix.MountLive(b, 256<<20, []string{"mkfs.btrfs", "-q"}, "")
	rng := rand.New(rand.NewSource(1))
	for _, c := range []string{"zstd", "no"} {
		run(b, "mount", "-o", "remount,compress-force="+c, mnt)
		for i := 0; i < 1000; i++ {
			write(b, filepath.Join(mnt, c, fmt.Sprintf("s%04d", i)), text(i, 3000+i*7))
		}
		for i := 0; i < 10; i++ {
			d := append(text(i, 2<<20), make([]byte, 1<<20)...)
			rng.Read(d[2<<20:])
			write(b, filepath.Join(mnt, c, fmt.Sprintf("big%d", i)), d)
		}
	}
	testfix.Unmount(b, mnt)
	for _, verify := range []bool{true, false} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				f := testfix.OpenImage(b, img, os.O_RDONLY, func(r io.ReaderAt, size int64) (*FS, error) { return OpenDevices([]Device{{r, size}}) })
				if !verify {
					f.csums = nil
				}
				b.StartTimer()
				err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						_, err = fs.ReadFile(f, p)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
