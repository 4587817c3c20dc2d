// Package vdi reads VirtualBox's VDI images: static (fixed) and dynamic ones, and differencing ones
// whose parent is named only by its UUID. Nothing is ever written.
package vdi

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/vddk/layer"
)

const (
	// Signature is the little-endian word at byte 0x40 of every VDI file.
	Signature = 0xbeda107f

	typeDynamic = 1
	typeStatic  = 2
	typeDiff    = 4

	blockFree = 0xffffffff // not allocated: the parent, or zeros
	blockZero = 0xfffffffe // reads as zeros

	maxBlock = 1 << 28
	maxSize  = 1 << 50
)

// Image is an opened VDI file, safe for concurrent use.
type Image struct {
	r         io.ReaderAt
	fileSize  int64
	size      int64
	typ       uint32
	blockSize int64
	dataOff   int64
	stride    int64 // block size plus its extra data
	extra     int64
	bmap      []uint32
	id        string
	parent    layer.Parent
}

// UUID formats 16 stored bytes as VirtualBox shows a UUID (the first three fields little-endian).
func UUID(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// ReadID returns the creation UUID of the VDI at r, for finding a child's parent among files.
func ReadID(r io.ReaderAt) (string, error) {
	h := make([]byte, 0x1a8)
	if err := layer.ReadFull(r, h, 0, "VDI header"); err != nil {
		return "", err
	}
	if binary.LittleEndian.Uint32(h[0x40:]) != Signature {
		return "", fmt.Errorf("not a VDI")
	}
	return UUID(h[0x188:]), nil
}

// Open parses the header and the block map.
func Open(r io.ReaderAt, fileSize int64) (*Image, error) {
	h := make([]byte, 0x200)
	if fileSize < int64(len(h)) {
		return nil, fmt.Errorf("VDI of %d bytes is shorter than its header", fileSize)
	}
	if err := layer.ReadFull(r, h, 0, "VDI header"); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if le.Uint32(h[0x40:]) != Signature {
		return nil, fmt.Errorf("not a VDI: no signature at byte 64")
	}
	if v := le.Uint32(h[0x44:]); v>>16 != 1 {
		return nil, layer.Unsupported("VDI version %d.%d", v>>16, v&0xffff)
	}
	if hs := le.Uint32(h[0x48:]); hs < 0x180 || hs > 0x200-0x48 {
		return nil, fmt.Errorf("VDI header size %d out of range", hs)
	}
	im := &Image{r: r, fileSize: fileSize, typ: le.Uint32(h[0x4c:])}
	switch im.typ {
	case typeDynamic, typeStatic, typeDiff:
	default:
		return nil, layer.Unsupported("VDI image type %d", im.typ)
	}
	mapOff, dataOff := int64(le.Uint32(h[0x154:])), int64(le.Uint32(h[0x158:]))
	if ss := le.Uint32(h[0x168:]); ss != 512 {
		return nil, layer.Unsupported("VDI sector size %d", ss)
	}
	im.size = int64(le.Uint64(h[0x170:]))
	im.blockSize = int64(le.Uint32(h[0x178:]))
	im.extra = int64(le.Uint32(h[0x17c:]))
	blocks := int64(le.Uint32(h[0x180:]))
	if im.size < 0 || im.size > maxSize {
		return nil, fmt.Errorf("VDI disk size %d out of range", im.size)
	}
	if im.blockSize < 512 || im.blockSize > maxBlock || im.blockSize&(im.blockSize-1) != 0 || im.extra < 0 || im.extra > maxBlock || im.extra%512 != 0 {
		return nil, fmt.Errorf("VDI block size %d (extra %d) is not a power of two from 512 bytes to 256 MiB", im.blockSize, im.extra)
	}
	need := (im.size + im.blockSize - 1) / im.blockSize
	if blocks < need {
		return nil, fmt.Errorf("VDI has %d blocks, the disk's %d bytes need %d", blocks, im.size, need)
	}
	if mapOff < 0x200 || mapOff > fileSize || need*4 > fileSize-mapOff {
		return nil, fmt.Errorf("VDI block map (%d entries at byte %d) runs past the end of the %d-byte file", need, mapOff, fileSize)
	}
	if dataOff < mapOff+need*4 || dataOff > fileSize {
		return nil, fmt.Errorf("VDI data offset %d overlaps the block map or lies past the end of the file", dataOff)
	}
	raw := make([]byte, need*4)
	if err := layer.ReadFull(r, raw, mapOff, "VDI block map"); err != nil {
		return nil, err
	}
	im.bmap = make([]uint32, need)
	for i := range im.bmap {
		im.bmap[i] = le.Uint32(raw[i*4:])
	}
	im.dataOff, im.stride = dataOff, im.blockSize+im.extra
	im.id = UUID(h[0x188:])
	if im.typ == typeDiff {
		im.parent = layer.Parent{ID: UUID(h[0x1a8:]), ByID: true}
	}
	return im, nil
}

// Size is the virtual disk's size in bytes.
func (im *Image) Size() int64 { return im.size }

// Close releases nothing: the caller owns the file.
func (im *Image) Close() error { return nil }

// Describe says what the image is.
func (im *Image) Describe() layer.Description {
	v := map[uint32]string{typeDynamic: "dynamic", typeStatic: "static", typeDiff: "differencing"}[im.typ]
	return layer.Description{Format: "vdi", Variant: v, ID: im.id, BlockSize: im.blockSize, Parent: im.parent}
}

func (im *Image) run(off, limit int64) (layer.State, int64, int64, error) {
	b := off / im.blockSize
	in := off % im.blockSize
	n := min(limit, im.blockSize-in)
	switch e := im.bmap[b]; e {
	case blockFree:
		return layer.None, n, 0, nil
	case blockZero:
		return layer.Zero, n, 0, nil
	default:
		host := im.dataOff + int64(e)*im.stride + im.extra
		if host+im.blockSize > im.fileSize {
			return 0, 0, 0, fmt.Errorf("VDI block %d (map entry %d) lies past the end of the %d-byte file", b, e, im.fileSize)
		}
		return layer.Data, n, host + in, nil
	}
}

// ReadAt fills p from virtual offset off; ranges not held here come from parent.
func (im *Image) ReadAt(p []byte, off int64, parent layer.ReadFunc) error {
	return layer.ReadRuns(im.r, im.run, p, off, parent, "VDI data")
}

// Span says where [off, off+n) lies when it is one run.
func (im *Image) Span(off, n int64) (layer.State, int64, bool) { return layer.SpanRuns(im.run, off, n) }

// Alloc reports the state of [off, off+n).
func (im *Image) Alloc(off, n int64, emit func(off, n int64, st layer.State)) error {
	return layer.AllocRuns(im.run, off, n, emit)
}
