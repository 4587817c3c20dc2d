// Package testfix loads the volumes test fixtures (gzip-compressed images made by
// testdata/volumes/make.sh) and finds the shared acceptance corpus. For tests only.
package testfix

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot walks up from the working directory to the folder holding go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Image returns the decompressed bytes of testdata/volumes/<name>.gz.
func Image(tb testing.TB, name string) []byte {
	tb.Helper()
	return Gunzip(tb, "volumes", name+".gz")
}

// Gunzip returns the decompressed bytes of the gzip file testdata/<elem...>.
func Gunzip(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	rel := filepath.Join(elem...)
	b, err := os.ReadFile(filepath.Join(RepoRoot(tb), "testdata", rel))
	if err != nil {
		tb.Fatalf("fixture %s: %v (made by the make.sh in its folder)", rel, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Corpus returns the acceptance corpus directory, or "" when it is absent.
func Corpus(tb testing.TB) string {
	dir := filepath.Join(RepoRoot(tb), "..", "shared", "acceptance", "corpus")
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// Dev is an in-memory disk.
type Dev struct{ *bytes.Reader }

// NewDev wraps b as a disk.
func NewDev(b []byte) Dev { return Dev{bytes.NewReader(b)} }

// ExecutablePrefix returns the first n bytes (or all, when shorter) of the running test binary:
// real x86 machine code, for the codecs that treat code specially (BCJ filters, LZX, WOF).
func ExecutablePrefix(t testing.TB, n int64) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
