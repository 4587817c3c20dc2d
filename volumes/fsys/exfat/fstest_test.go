package exfat

import (
	"testing"
	"testing/fstest"
)

// TestIOFSContract runs the standard library's io/fs conformance checks on the exFAT fixture.
func TestIOFSContract(t *testing.T) {
	v := open(t, fixture(t))
	if err := fstest.TestFS(v, "empty.txt", "deep/a/b/c/d/e/f/g/h/i/j/leaf.txt", "emoji-😀-𝄞.txt", "many/entry 999"); err != nil {
		t.Fatal(err)
	}
}
