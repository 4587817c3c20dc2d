package ntfs

import (
	"io"
	"io/fs"
	"os"
	"testing"
	"time"
)

// TestWalkBench is the measurement behind bench/ntfs-walk.sh, which builds the image and the ntfs-3g
// mount and sets NTFS_WALK_IMAGE and NTFS_WALK_HOST. It walks the whole tree, stats every entry and
// reads every regular file, once through our reader and once through ntfs-3g, each from a cold page
// cache, prints both times and their ratio, then compares the two trees entry by entry.
func TestWalkBench(t *testing.T) {
	img, host := os.Getenv("NTFS_WALK_IMAGE"), os.Getenv("NTFS_WALK_HOST")
	if img == "" || host == "" {
		t.Skip("run through bench/ntfs-walk.sh")
	}
	// Read the image once so that the machine's own disk cache (below this kernel) is equally warm
	// for both readers; each measurement then starts from a dropped page cache.
	if f, err := os.Open(img); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
	ours := openImage(t, img, Options{})
	var best [2]time.Duration
	for round := range 2 {
		for i, tree := range []fs.FS{ours, os.DirFS(host)} {
			dropCaches(t)
			start := time.Now()
			files, bytes := walkAndRead(t, tree)
			d := time.Since(start)
			if round == 0 || d < best[i] {
				best[i] = d
			}
			t.Logf("round %d %-8s %d files, %d bytes in %v", round, []string{"ours", "ntfs-3g"}[i], files, bytes, d)
		}
		ours.Close() // cold caches of our own too
	}
	t.Logf("RESULT ours %v, ntfs-3g %v, ntfs-3g/ours = %.2fx", best[0], best[1], best[1].Seconds()/best[0].Seconds())
	// The speed only counts if the answers are right: the whole tree must match the mount.
	compareTrees(t, ours, host)
}

func dropCaches(t *testing.T) {
	t.Helper()
	exec := func(s string) {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte(s), 0); err != nil {
			t.Fatalf("drop caches (needs root): %v", err)
		}
	}
	exec("3")
}

func walkAndRead(t *testing.T, tree fs.FS) (files int, total int64) {
	buf := make([]byte, 128<<10)
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := tree.Open(p)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		f.Close()
		files++
		total += n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, total
}
