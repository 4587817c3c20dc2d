package squashfs

import (
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"testing"
)

// An xz block header may ask for a 4 GiB LZMA2 dictionary; a squashfs block is a stream of its own and
// at most a block long, so decoding it must not allocate more than about a block. (The fuzzer's worker
// died of this: each such input allocated 1 GiB.)
func TestXzDictionaryBoundedByBlock(t *testing.T) {
	hdr := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 1, 0x69, 0x22, 0xde, 0x36}
	const limit = 128 << 10
	x, err := newDecompressor(compXz, limit)
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte{0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', '!', 0x00} // stored chunk of 6 bytes, end
	for _, prop := range []byte{12, 30, 39, 40} {
		// With a branch filter before LZMA2 (mksquashfs -Xbcj), and with LZMA2 alone.
		for _, block := range [][]byte{
			{2, 0x01, xzFilterX86, 0, xzFilterLZMA2, 1, prop, 0, 0, 0, 0, 0},
			{2, 0x00, xzFilterLZMA2, 1, prop, 0, 0, 0, 0, 0, 0, 0},
		} {
			binary.LittleEndian.PutUint32(block[8:], crc32.ChecksumIEEE(block[:8]))
			src := append(append(append([]byte(nil), hdr...), block...), chunk...)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			out, err := x.decompress(src, limit)
			runtime.ReadMemStats(&after)
			if err != nil || string(out) != "hello!" {
				t.Fatalf("dictionary property %d, filters %x: %q, %v", prop, block[2], out, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 4*limit+(1<<20) {
				t.Errorf("dictionary property %d, filters %x: decoding a 6-byte block allocated %d bytes", prop, block[2], n)
			}
		}
	}
}
