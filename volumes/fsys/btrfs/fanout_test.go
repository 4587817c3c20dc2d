package btrfs

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutOneName: on the fan-btrfs image of testdata/hostile with every fanB re-pointed at its
// sibling fanA, fanB is left out of every listing and refused on lookup (hostile.CheckFanOutOneName).
func TestFanOutOneName(t *testing.T) {
	hostile.CheckFanOutOneName(t, "btrfs", Open)
}
