package xfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"testing"
	"time"
)

// TestWalkTiming is the measuring half of bench/xfs-walk.sh: it walks XFS_WALK_PATH (a directory, read
// through the kernel, or an XFS image, read through this package), lstats every entry and reads every
// regular file to the end, then prints the time taken. Without the variable it is skipped.
func TestWalkTiming(t *testing.T) {
	p := os.Getenv("XFS_WALK_PATH")
	if p == "" {
		t.Skip("XFS_WALK_PATH not set (run bench/xfs-walk.sh)")
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var tree fs.FS
	if st.IsDir() {
		tree = os.DirFS(p)
	} else {
		tree = openFile(t, p)
	}
	files, bytes, err := walkAndRead(tree)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("walked %d files, %d bytes in %v\n", files, bytes, time.Since(start))
}

func walkAndRead(tree fs.FS) (files int, total int64, err error) {
	buf := make([]byte, 256<<10)
	err = fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
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
		defer f.Close()
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		files++
		total += n
		return err
	})
	return files, total, err
}
