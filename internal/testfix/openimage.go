package testfix

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// OpenImage opens the image file img read-only, with the extra open flags (unix.O_NOATIME for a
// snapshot whose times are checked), and hands it and its size to a reader's open. The file and
// the reader are closed at cleanup.
func OpenImage[T io.Closer](tb testing.TB, img string, flags int, open func(io.ReaderAt, int64) (T, error)) T {
	tb.Helper()
	f, err := os.OpenFile(img, os.O_RDONLY|flags, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	v, err := open(f, st.Size())
	if err != nil {
		tb.Fatalf("open %s: %v", filepath.Base(img), err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}
