package squashfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// TestCorruptSuperblock checks that each broken superblock field is refused with an error naming it.
func TestCorruptSuperblock(t *testing.T) {
	good := fixtureBytes(t, "tree-gzip.sqfs")
	for _, tc := range []struct {
		name   string
		patch  func(b []byte)
		want   error
		phrase string
	}{
		{"magic", func(b []byte) { b[0] = 'X' }, ErrCorrupt, "magic"},
		{"version", func(b []byte) { binary.LittleEndian.PutUint16(b[28:], 3) }, ErrUnsupported, "version"},
		{"block log", func(b []byte) { binary.LittleEndian.PutUint16(b[22:], 30) }, ErrCorrupt, "block size"},
		{"bytes used", func(b []byte) { binary.LittleEndian.PutUint64(b[40:], 1<<40) }, ErrCorrupt, "bytes_used"},
		{"inode table", func(b []byte) { binary.LittleEndian.PutUint64(b[64:], 1<<30) }, ErrCorrupt, "inode table"},
		{"compressor", func(b []byte) { binary.LittleEndian.PutUint16(b[20:], 9) }, ErrUnsupported, "compressor"},
		{"lzma", func(b []byte) { binary.LittleEndian.PutUint16(b[20:], compLzma) }, ErrUnsupported, "lzma"},
		{"id table", func(b []byte) { binary.LittleEndian.PutUint64(b[48:], 1<<40) }, ErrCorrupt, "id table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(good)
			tc.patch(img)
			_, err := Open(bytes.NewReader(img), int64(len(img)))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.phrase)
			}
		})
	}
}

// TestTruncatedImages cuts an image at many points: Open or the walk must fail cleanly, never panic
// or hang, and an image cut after the data must still give errors, not wrong bytes silently.
func TestTruncatedImages(t *testing.T) {
	good := fixtureBytes(t, "tree-gzip.sqfs")
	used := int(binary.LittleEndian.Uint64(good[40:]))
	for cut := 0; cut < used; cut += used/37 + 1 {
		img := good[:cut]
		if _, err := Open(bytes.NewReader(img), int64(len(img))); err == nil {
			t.Fatalf("cut at %d: opened an image whose superblock says %d bytes are used", cut, used)
		}
	}
	// A reader that lies about its size: tables past the real end surface as read errors.
	f, err := Open(bytes.NewReader(good[:len(good)/2]), int64(len(good)))
	if err == nil {
		exercise(f.(*FS))
	}
}

// TestCorruptMetadata flips bytes across the metadata tables; every call must return or fail cleanly.
func TestCorruptMetadata(t *testing.T) {
	good := fixtureBytes(t, "tiny-uncompressed.sqfs")
	sb, err := parseSuperblock(good, int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for off := int(sb.inodeTableStart); off < int(sb.bytesUsed); off++ {
		img := bytes.Clone(good)
		img[off] ^= 0xff
		f, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			failures++
			continue
		}
		exercise(f.(*FS))
	}
	t.Logf("%d of %d flipped bytes made Open fail", failures, int(sb.bytesUsed-sb.inodeTableStart))
}
