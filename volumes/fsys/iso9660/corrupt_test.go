package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func both32(v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, v), v)
}

// TestContinuationLoop builds a CE area that names itself: the loop must be reported, not followed.
func TestContinuationLoop(t *testing.T) {
	ce := append([]byte{'C', 'E', 28, 1}, append(append(both32(1), both32(0)...), both32(28)...)...)
	img := make([]byte, 2*sectorSize)
	copy(img[sectorSize:], ce)
	f := &FS{r: bytes.NewReader(img), size: int64(len(img))}
	_, err := f.parseSUSP(ce, 0)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "loops") {
		t.Fatalf("got %v, want a continuation loop error", err)
	}
}

// TestCorruptImages patches real images and expects errors that name the problem.
func TestCorruptImages(t *testing.T) {
	good := fixture(t, "small-rr")
	pvd := firstDescriptor * sectorSize
	for _, tc := range []struct {
		name   string
		patch  func(b []byte) []byte
		phrase string
	}{
		{"no signature", func(b []byte) []byte { b[pvd+1] = 'X'; return b }, "CD001"},
		{"truncated descriptors", func(b []byte) []byte { return b[:pvd+sectorSize] }, "past the image end"},
		{"block size", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[pvd+128:], 512); return b }, "block size"},
		{"root length", func(b []byte) []byte { b[pvd+156] = 20; return b }, "root directory record"},
		{"root outside", func(b []byte) []byte {
			copy(b[pvd+156+2:], both32(1<<30))
			return b
		}, "root directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.patch(bytes.Clone(good))
			_, err := Open(bytes.NewReader(img), int64(len(img)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("got %v, want ErrCorrupt mentioning %q", err, tc.phrase)
			}
		})
	}
}

// TestFlippedBytes flips every byte of the directory area of a small image; each walk must finish
// with results or errors, never a panic or a hang.
func TestFlippedBytes(t *testing.T) {
	good := trimmed(fixture(t, "small-rr"))
	for off := 18 * sectorSize; off < min(len(good), 40*sectorSize); off += 7 {
		img := bytes.Clone(good)
		img[off] ^= 0xa5
		f, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			continue
		}
		exercise(f.(*FS))
	}
}
