package makefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStreamFullBuffer: a gap that fills the stream's buffer exactly, then a file: the file's bytes
// land after the gap (the buffer was once left full, and the copy read into no room).
func TestStreamFullBuffer(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("abc"), 0o644)
	out, err := os.Create(filepath.Join(dir, "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	s := newStream(out, 0)
	if err := s.seek(copyBuf); err != nil {
		t.Fatal(err)
	}
	if err := s.copyFile(dir, entry{rel: "a", size: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := out.ReadAt(b, copyBuf); err != nil || string(b) != "abc" {
		t.Fatalf("read back %q %v", b, err)
	}
	if err := s.copyFile(dir, entry{rel: "a", size: 4}); err == nil || !strings.Contains(err.Error(), "short") {
		t.Fatalf("a file shorter than listed: %v", err)
	}
}

// TestFATFolderLimit: a folder whose names take more than 65,536 entries is refused, naming it, or left
// out with what it holds.
func TestFATFolderLimit(t *testing.T) {
	entries := []entry{{rel: "big", mode: fs.ModeDir | 0o755}}
	for i := range 22000 { // 3 entries each: 2 long-name parts and the short one
		entries = append(entries, entry{rel: fmt.Sprintf("big/a long file name %05d.txt", i), mode: 0o644})
	}
	entries = append(entries, entry{rel: "small", mode: 0o644})
	if _, _, err := filter("fat32", entries, false); !errors.Is(err, ErrUnsupported) || !strings.HasPrefix(err.Error(), "big: folder") {
		t.Fatalf("22,000 long names in one folder: %v", err)
	}
	kept, skipped, err := filter("fat32", entries, true)
	if err != nil || len(kept) != 1 || kept[0].rel != "small" || len(skipped) != 1 {
		t.Fatalf("skip: kept %d, skipped %v, %v", len(kept), skipped, err)
	}
	if _, _, err := filter("fat32", entries[:20000], false); err != nil {
		t.Fatalf("19,999 long names (60,001 entries): %v", err)
	}
}
