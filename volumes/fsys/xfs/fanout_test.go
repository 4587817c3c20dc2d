package xfs

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutOneName: on the fan-xfs image of testdata/hostile with every fanB re-pointed at its
// sibling fanA, fanB is left out of every listing and refused on lookup (hostile.CheckFanOutOneName).
func TestFanOutOneName(t *testing.T) {
	hostile.CheckFanOutOneName(t, "xfs", Open)
}
