package xfs

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// Every directory of every fixture (shortform, block, leaf and node forms) streams the names ReadDir
// lists, whatever the batch size, and a stream resumed at any entry's cookie gives the rest.
func TestDirStreamMatchesReadDir(t *testing.T) {
	for _, name := range []string{"v4", "v5", "v5-1k"} {
		dirs, diffs := treecmp.CompareStreams(fixtureFS(t, name))
		for _, d := range diffs {
			t.Errorf("%s: %s", name, d)
		}
		if dirs < 3 {
			t.Errorf("%s: only %d directories", name, dirs)
		}
		t.Logf("%s: %d directories", name, dirs)
	}
}
