package fat

import (
	"testing"
	"testing/fstest"
)

// TestIOFSContract runs the standard library's io/fs conformance checks on the FAT12 fixture.
func TestIOFSContract(t *testing.T) {
	v, _ := openFixture(t, "fat12")
	if err := fstest.TestFS(v, "empty.txt", "deep/a/b/c/d/e/f/g/h/i/j/leaf.txt", "emoji-😀-𝄞.txt", "Hidden Dir/inside.txt"); err != nil {
		t.Fatal(err)
	}
}
