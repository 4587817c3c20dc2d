package treecmp

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// MatchesKernelReplay is the judge of a reader's journal or log replay: it compares ours, opened on
// the dirty snapshot snap, with the kernel's replay of a writable copy mounted with the extra options
// opts, then checks snap still has the identity before (testfix.SourceID taken before ours was
// opened). It returns the kernel's mount point.
func MatchesKernelReplay(tb testing.TB, ours fsys.FS, snap, opts, before string) string {
	tb.Helper()
	mnt := testfix.KernelReplay(tb, snap, opts)
	for _, d := range Compare(ours, mnt, Options{CompareIno: true, Ignore: Atime}) {
		tb.Error(d)
	}
	if after := testfix.SourceID(tb, snap); after != before {
		tb.Errorf("the snapshot changed while we read it:\n%s\n%s", before, after)
	}
	return mnt
}
