package fsys

import (
	"maps"
	"slices"
	"testing"
)

func TestSecondDirNames(t *testing.T) {
	type ent struct {
		ino int
		dir bool
	}
	var asked []int
	isDir := func(e ent) bool { asked = append(asked, e.ino); return e.dir }
	key := func(e ent) int { return e.ino }

	// Nothing repeats: no isDir call at all, nil result.
	if got := SecondDirNames([]ent{{1, true}, {2, true}, {3, false}}, key, isDir); got != nil || len(asked) != 0 {
		t.Fatalf("unique keys: %v, isDir asked of %v", got, asked)
	}
	// Inode 7 is a directory named three times (the first name stays), inode 8 a file named twice (a
	// hard link, kept), and inode 9 first a file entry then a directory entry (the directory is its
	// first directory name, so it stays).
	ents := []ent{{7, true}, {8, false}, {5, true}, {7, true}, {8, false}, {9, false}, {9, true}, {7, true}}
	got := SecondDirNames(ents, key, isDir)
	if want := map[int]bool{3: true, 7: true}; !maps.Equal(got, want) {
		t.Errorf("second names at %v, want %v", got, want)
	}
	if slices.Contains(asked, 5) {
		t.Errorf("isDir was asked of an entry whose key does not repeat: %v", asked)
	}
}
