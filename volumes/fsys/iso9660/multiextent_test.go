package iso9660

import (
	"bytes"
	"io"
	"testing"
)

// TestMultiExtent marks the first of two adjacent file records as "not the final extent" (flag 0x80),
// which is how files over 4 GiB are split; the pair must then read as one file holding both contents
// (as written by make.sh: "noext\n" then "joliet and plain\n"), and the second name must vanish.
func TestMultiExtent(t *testing.T) {
	img := fixture(t, "small-plain")
	i := bytes.Index(img, []byte("NOEXT.;1"))
	if i < 33 {
		t.Fatal("record NOEXT.;1 not found")
	}
	rec := i - 33
	img[rec+25] |= flagMultiExt
	f, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	want := "noext\njoliet and plain\n"
	fl, err := f.Open("noext")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(fl)
	if err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	part := make([]byte, 8)
	if n, err := fl.(io.ReaderAt).ReadAt(part, 2); n != 8 || string(part) != want[2:10] {
		t.Fatalf("ReadAt across the extent boundary: %q, %v", part[:n], err)
	}
	if _, err := f.Stat("readme.txt"); err == nil {
		t.Fatal("the continuation record is still listed on its own")
	}
}
