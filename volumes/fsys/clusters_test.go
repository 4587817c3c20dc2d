package fsys

import (
	"errors"
	"strings"
	"testing"
)

var errTestCorrupt = errors.New("corrupt")

// TestFragmentedChainLoop walks a chain of more than 32 runs (where loop detection switches to a
// bitmap) that finally links back into itself, and the same chain ending properly; then free and bad
// links and a link past the volume.
func TestFragmentedChainLoop(t *testing.T) {
	fat := make([]uint32, 200)
	for c := 2; c < 100; c += 2 {
		fat[c] = uint32(c + 2)
	}
	fat[100] = 0xFFFF
	walker := func() *ChainWalker {
		return &ChainWalker{Corrupt: errTestCorrupt, MaxCluster: 199, Clusters: 198, Bad: 0xFFF7,
			Entry: func(c uint32) (uint32, error) { return fat[c], nil }, IsEnd: func(v uint32) bool { return v >= 0xFFF8 }}
	}
	c, err := walker().Walk(2, -1)
	if err != nil || len(c.Runs) != 50 || c.Clusters != 50 || !c.Complete {
		t.Fatalf("fragmented chain: %+v %v", c, err)
	}
	for _, tc := range []struct {
		end  uint32
		want string
	}{{40, "loops back to cluster 40"}, {0, "free cluster"}, {0xFFF7, "bad cluster"}, {500, "invalid cluster 500"}} {
		fat[100] = tc.end
		if _, err := walker().Walk(2, -1); !errors.Is(err, errTestCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("chain ending in %#x: %v, want %q", tc.end, err, tc.want)
		}
	}
}
