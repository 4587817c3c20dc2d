package ntfs

import (
	"io"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutOneName: on the fan-ntfs image of testdata/hostile with every fanB re-pointed at its
// sibling fanA, fanB is left out of every listing and refused on lookup (hostile.CheckFanOutOneName).
func TestFanOutOneName(t *testing.T) {
	hostile.CheckFanOutOneName(t, "ntfs", func(r io.ReaderAt, size int64) (fsys.FS, error) { return Open(r, size, Options{}) })
}
