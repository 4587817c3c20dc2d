package squashfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// xzTool compresses data with the xz command line tool and the given options.
func xzTool(t *testing.T, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed")
	}
	cmd := exec.Command("xz", append([]string{"-T1", "--format=xz", "--stdout"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

// setXzDict rewrites the LZMA2 dictionary property of the block whose header starts at off, and the
// header's CRC32.
func setXzDict(t *testing.T, src []byte, off int, prop byte) {
	t.Helper()
	n := (int(src[off]) + 1) * 4
	hdr := src[off : off+n]
	i := bytes.IndexByte(hdr[2:], xzFilterLZMA2)
	if i < 0 || hdr[2+i+1] != 1 {
		t.Fatalf("no LZMA2 filter in the block header % x", hdr)
	}
	hdr[2+i+2] = prop
	binary.LittleEndian.PutUint32(hdr[n-4:], crc32.ChecksumIEEE(hdr[:n-4]))
}

func textBlock(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of a text file with %x in it\n", i, i*i*7919)
	}
	return b.Bytes()[:n]
}

// decodeBounded decompresses src and fails t when it takes more than a second or allocates more than
// a few blocks' worth.
func decodeBounded(t *testing.T, x decompressor, src []byte, limit int) ([]byte, error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	out, err := x.decompress(src, limit)
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > uint64(6*limit+(4<<20)) {
		t.Errorf("decoding %d bytes allocated %d MiB", len(src), a>>20)
	}
	// A hang, not slowness: CI machines run this under -race beside other work; memory is checked above.
	if el > 20*time.Second {
		t.Errorf("decoding %d bytes took %v", len(src), el)
	}
	return out, err
}

// A stream of several blocks (xz --block-size, which mksquashfs never writes but a hostile image may)
// whose later blocks ask for a 4 GiB dictionary: every block header is checked, each dictionary is
// bounded by the block's output, and the bytes are the ones xz compressed.
func TestXzEveryBlockDictionaryBounded(t *testing.T) {
	const limit = 1 << 20
	data := textBlock(limit)
	x, err := newDecompressor(compXz, limit)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]string{
		{"--check=crc32", "--block-size=262144", "--lzma2=dict=256KiB"},
		{"--check=crc64", "--block-size=100000", "--x86", "--lzma2=dict=1MiB"},
		{"--check=sha256", "--block-size=20000"},
	} {
		src := xzTool(t, data, opts...)
		blocks, err := parseXzBlocks(src, limit)
		if err != nil || len(blocks) < 4 {
			t.Fatalf("%v: %d blocks, %v", opts, len(blocks), err)
		}
		if out, err := decodeBounded(t, x, src, limit); err != nil || !bytes.Equal(out, data) {
			t.Errorf("%v: %d bytes, %v", opts, len(out), err)
		}
		for _, k := range []int{1, len(blocks) - 1} {
			bad := bytes.Clone(src)
			off := blockHeaderOffset(t, src, blocks, k)
			setXzDict(t, bad, off, 40) // 4 GiB
			out, err := decodeBounded(t, x, bad, limit)
			if err != nil || !bytes.Equal(out, data) {
				t.Errorf("%v, block %d asking 4 GiB: %d bytes, %v", opts, k, len(out), err)
			}
		}
	}
}

// blockHeaderOffset finds block k's header: the first is after the stream header, each next one after
// the previous block's data, padding and check.
func blockHeaderOffset(t *testing.T, src []byte, blocks []xzBlock, k int) int {
	t.Helper()
	off := 12
	checkSize := xzCheckSizes[src[7]&0x0f]
	for i := range k {
		end := blocks[i].dataEnd
		off = end + (4-(end-off)%4)%4 + checkSize
	}
	if off+(int(src[off])+1)*4 != blocks[k].dataOff {
		t.Fatalf("block %d header at %d does not lead to its data at %d", k, off, blocks[k].dataOff)
	}
	return off
}

// Thousands of tiny blocks in one squashfs block are refused before any is decoded (each would cost a
// decoder); up to maxXzBlocks decode, bounded by the block.
func TestXzManyTinyBlocks(t *testing.T) {
	const limit = 128 << 10
	data := textBlock(limit)
	x, _ := newDecompressor(compXz, limit)
	src := xzTool(t, data, "--check=none", "--block-size=32")
	if _, err := decodeBounded(t, x, src, limit); !errors.Is(err, ErrUnsupported) {
		t.Errorf("%d blocks: %v, want ErrUnsupported", limit/32, err)
	}
	src = xzTool(t, data, "--check=none", fmt.Sprintf("--block-size=%d", limit/maxXzBlocks))
	out, err := decodeBounded(t, x, src, limit)
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("%d blocks: %d bytes, %v", maxXzBlocks, len(out), err)
	}
	// The chunks' sizes are checked against the limit before anything is decoded.
	if _, err := x.decompress(src, limit-1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a stream of limit+1 bytes under the limit: %v", err)
	}
}

// The image-level case: a file's data block in a real xz image replaced by a two-block stream whose
// second block asks for a 4 GiB dictionary (the library would allocate it on every read): the read
// fails as damage (the block is 12 bytes, not 128 KiB), allocates next to nothing, and the rest of the
// image still reads.
func TestXzImageSecondBlockDictionary(t *testing.T) {
	img := fixtureBytes(t, "tree-xz.sqfs")
	orig, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := orig.(*FS).resolve("open", "one-block", true)
	if err != nil {
		t.Fatal(err)
	}
	want := textOf(t, orig.(*FS), "hello.txt")
	old := int(n.in.blocks[0] & blockSizeMask)
	stream := testfix.XzDictionaryBomb()
	if len(stream) > old {
		t.Fatalf("the stream (%d bytes) is longer than the block it replaces (%d)", len(stream), old)
	}
	bad := bytes.Clone(img)
	start := int(n.in.start)
	clear(bad[start+copy(bad[start:], stream) : start+old])
	hostile, err := Open(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	file, err := hostile.Open("one-block")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(file)
	file.Close()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("read of the patched block: %v, want ErrCorrupt", err)
	}
	t.Log(err)
	if a := after.TotalAlloc - before.TotalAlloc; a > 16<<20 {
		t.Errorf("reading a 128 KiB file allocated %d MiB", a>>20)
	}
	if got := textOf(t, hostile.(*FS), "hello.txt"); !bytes.Equal(got, want) {
		t.Errorf("hello.txt reads %q after it, want %q", got, want)
	}
}

func textOf(t *testing.T, f *FS, name string) []byte {
	t.Helper()
	file, err := f.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	b, err := io.ReadAll(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
