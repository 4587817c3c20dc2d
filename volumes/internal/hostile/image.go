// Package hostile derives damaged variants of real disk and filesystem images for the hostile-image
// suite: fields set to extremes, sizes of 2^63, directories re-pointed at themselves or their parents,
// loops in partition chains, truncations at structure boundaries. A variant is the base image seen
// through a list of patches and a length, so thousands of variants share one copy of the image.
// For tests only.
package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Image is a base image with patches applied in order and a length (a truncation when shorter).
// It reads concurrently; the patch methods are for building the variant before it is read.
type Image struct {
	base    []byte
	chunks  map[int64][]byte // instead of base for a sparse image: its non-zero chunks by index
	size    int64
	patches []patch
}

const chunkSize = 64 << 10

// NewSparse reads size bytes from r keeping only its non-zero 64 KiB chunks: a large image that is
// mostly holes (the LDM test disks) costs only its data.
func NewSparse(r io.ReaderAt, size int64) (*Image, error) {
	im := &Image{chunks: map[int64][]byte{}, size: size}
	buf := make([]byte, chunkSize)
	for c := int64(0); c*chunkSize < size; c++ {
		n, err := r.ReadAt(buf, c*chunkSize)
		if n < len(buf) && int64(n) < size-c*chunkSize {
			return nil, fmt.Errorf("hostile: reading chunk %d: %w", c, err)
		}
		for _, x := range buf[:n] {
			if x != 0 {
				im.chunks[c] = append(make([]byte, 0, chunkSize), buf...)
				break
			}
		}
	}
	return im, nil
}

type patch struct {
	off  int64
	data []byte
}

// New wraps b as an image without changes.
func New(b []byte) *Image { return &Image{base: b, size: int64(len(b))} }

// Clone returns an independent variant of im with the same patches and length.
func (im *Image) Clone() *Image {
	c := *im
	c.patches = append([]patch(nil), im.patches...)
	return &c
}

// Truncated returns a variant cut to n bytes.
func (im *Image) Truncated(n int64) *Image {
	c := im.Clone()
	c.size = min(max(n, 0), im.size)
	return c
}

// Size is the image length in bytes.
func (im *Image) Size() int64 { return im.size }

// ReadAt reads the base bytes with every patch over them.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("hostile image: negative offset %d", off)
	}
	if off >= im.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), im.size-off))
	switch {
	case im.chunks != nil:
		for done := 0; done < n; {
			at := off + int64(done)
			c, in := at/chunkSize, int(at%chunkSize)
			m := min(n-done, chunkSize-in)
			if data, ok := im.chunks[c]; ok {
				copy(p[done:done+m], data[in:])
			} else {
				clear(p[done : done+m])
			}
			done += m
		}
	case off < int64(len(im.base)):
		k := copy(p[:n], im.base[off:])
		clear(p[k:n]) // a patch may lengthen the image past its base
	default:
		clear(p[:n])
	}
	for _, pt := range im.patches {
		lo, hi := max(pt.off, off), min(pt.off+int64(len(pt.data)), off+int64(n))
		if lo < hi {
			copy(p[lo-off:hi-off], pt.data[lo-pt.off:hi-pt.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Bytes returns n bytes at off as the variant reads them (zeros past its end).
func (im *Image) Bytes(off int64, n int) []byte {
	b := make([]byte, n)
	im.ReadAt(b, off)
	return b
}

// Put writes data at off.
func (im *Image) Put(off int64, data []byte) {
	im.patches = append(im.patches, patch{off, append([]byte(nil), data...)})
	if end := off + int64(len(data)); end > im.size && im.chunks == nil && int64(len(im.base)) >= end {
		im.size = end
	}
}

// PutLE writes v as a little-endian integer of width bytes (1, 2, 4 or 8).
func (im *Image) PutLE(off int64, width int, v uint64) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	im.Put(off, b[:width])
}

// PutBE writes v as a big-endian integer of width bytes (1, 2, 4 or 8).
func (im *Image) PutBE(off int64, width int, v uint64) {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	im.Put(off, b[8-width:])
}

// U16/U32/U64 read little-endian integers of the variant; B16/B32/B64 big-endian ones.
func (im *Image) U16(off int64) uint16 { return binary.LittleEndian.Uint16(im.Bytes(off, 2)) }
func (im *Image) U32(off int64) uint32 { return binary.LittleEndian.Uint32(im.Bytes(off, 4)) }
func (im *Image) U64(off int64) uint64 { return binary.LittleEndian.Uint64(im.Bytes(off, 8)) }
func (im *Image) B16(off int64) uint16 { return binary.BigEndian.Uint16(im.Bytes(off, 2)) }
func (im *Image) B32(off int64) uint32 { return binary.BigEndian.Uint32(im.Bytes(off, 4)) }
func (im *Image) B64(off int64) uint64 { return binary.BigEndian.Uint64(im.Bytes(off, 8)) }

// Case is one hostile input: a set of disks (usually one) and the name the suite reports it under.
type Case struct {
	Name  string
	Disks []*Image
	// BigSize is set when big.bin's size field was made hostile: its content may be cut or padded, but
	// whatever bytes of its first 77777 are returned must be the real ones.
	BigSize bool
	// States, when set, are the volume states (fsys.VolumeState.State) the case's filesystem volume
	// may report: a damaged journal must not make a live volume look clean.
	States []string
}

// one makes a single-disk case.
func one(name string, im *Image) Case { return Case{Name: name, Disks: []*Image{im}} }

// find returns every offset of needle in b at which ok (if given) agrees.
func find(b, needle []byte, ok func(off int64) bool) []int64 {
	var out []int64
	for from := 0; ; {
		i := bytes.Index(b[from:], needle)
		if i < 0 {
			return out
		}
		if at := int64(from + i); ok == nil || ok(at) {
			out = append(out, at)
		}
		from += i + 1
	}
}

// utf16le encodes an ASCII name as UTF-16LE; utf16be as UTF-16BE.
func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	return b
}

func utf16be(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		b = append(b, 0, c)
	}
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
