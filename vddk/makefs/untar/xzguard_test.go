package untar

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// xzTar is a tar of a compressible and an incompressible file (so xz writes both LZMA and
// uncompressed LZMA2 chunks), and its members' contents.
func xzTar(t *testing.T) ([]byte, map[string][]byte) {
	rnd := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 300<<10)
	for i := range noise {
		noise[i] = byte(rnd.Uint32())
	}
	files := map[string][]byte{
		"text":  bytes.Repeat([]byte("make-fs reads xz archives\n"), 40000),
		"noise": noise,
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range []string{"text", "noise"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
	}
	tw.Close()
	return b.Bytes(), files
}

func xzCompress(t *testing.T, in []byte, args ...string) []byte {
	cmd := exec.Command("xz", append([]string{"-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

// TestXZFraming: archives xz itself writes (every check type, several blocks, several streams with
// padding) pass the dictionary guard and extract to the members' bytes.
func TestXZFraming(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz is not installed")
	}
	plain, files := xzTar(t)
	half := len(plain) / 2
	cases := map[string][]byte{
		"crc64":      xzCompress(t, plain),
		"none":       xzCompress(t, plain, "-C", "none", "-1"),
		"crc32":      xzCompress(t, plain, "-C", "crc32", "-9"),
		"sha256":     xzCompress(t, plain, "-C", "sha256"),
		"blocks":     xzCompress(t, plain, "-T2", "--block-size=100KiB"),
		"two blocks": xzCompress(t, plain, "--block-size=333333"),
		"streams": append(append(append(xzCompress(t, plain[:half]), 0, 0, 0, 0, 0, 0, 0, 0),
			xzCompress(t, plain[half:], "-C", "crc32")...), 0, 0, 0, 0),
	}
	for name, data := range cases {
		dir := t.TempDir()
		if err := ExtractFrom(bytes.NewReader(data), name+".tar.xz", dir); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for f, want := range files {
			if got, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %s differs (%v)", name, f, err)
			}
		}
	}
}

// withDict rewrites the dictionary byte of the first block header at or after from, and that
// header's checksum; it returns where the header starts.
func withDict(t *testing.T, xz []byte, from int, d byte) int {
	i := from + 12 // after the stream header
	size := (int(xz[i]) + 1) * 4
	h := xz[i : i+size]
	if h[1]&0xc0 != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected block header % x", h)
	}
	h[4] = d
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return i
}

// TestXZHostileDict: a block declaring a dictionary of 3 or 4 GiB, in the first stream or in a
// later one, is refused before the decoder allocates it, with an error naming the archive.
func TestXZHostileDict(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz is not installed")
	}
	plain, _ := xzTar(t)
	for _, d := range []byte{39, 40} {
		first := xzCompress(t, plain, "-1")
		withDict(t, first, 0, d)
		good := xzCompress(t, plain[:len(plain)/2], "-1")
		second := append(good, xzCompress(t, plain[len(plain)/2:], "-1")...)
		withDict(t, second, len(good), d)
		for name, data := range map[string][]byte{"first": first, "second": second} {
			err := ExtractFrom(bytes.NewReader(data), "evil.tar.xz", t.TempDir())
			if err == nil || !strings.Contains(err.Error(), "evil.tar.xz") || !strings.Contains(err.Error(), "dictionary") {
				t.Fatalf("%s stream, dict byte %d: %v", name, d, err)
			}
			t.Logf("%s: %v", name, err)
		}
	}
	// The same archive with an allowed dictionary extracts.
	ok := xzCompress(t, plain, "-1")
	withDict(t, ok, 0, 27) // 3<<24: 48 MiB
	if err := ExtractFrom(bytes.NewReader(ok), "ok.tar.xz", t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
