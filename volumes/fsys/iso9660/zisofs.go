package iso9660

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
)

// zisofs describes a file compressed with zisofs (Rock Ridge ZF "pz"): its extent starts with a
// header of headerSize bytes, then a table of little-endian offsets, one per block plus one, and each
// block of 1<<blockLog bytes is a zlib stream (or nothing, for a block of zeros).
type zisofs struct {
	headerSize uint32
	blockLog   uint8
	size       uint32 // uncompressed size
}

// readZisofs fills p from the uncompressed file at off. raw reads the compressed extent.
func readZisofs(z *zisofs, raw io.ReaderAt, rawSize int64, p []byte, off int64) (int, error) {
	bs := int64(1) << z.blockLog
	done := 0
	for done < len(p) && off+int64(done) < int64(z.size) {
		pos := off + int64(done)
		blk := pos / bs
		data, err := zisofsBlock(z, raw, rawSize, blk)
		if err != nil {
			return done, err
		}
		want := min(bs, int64(z.size)-blk*bs)
		if int64(len(data)) != want {
			return done, fmt.Errorf("%w: zisofs block %d holds %d bytes, want %d", ErrCorrupt, blk, len(data), want)
		}
		done += copy(p[done:], data[pos-blk*bs:])
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// zisofsBlock decompresses block blk.
func zisofsBlock(z *zisofs, raw io.ReaderAt, rawSize int64, blk int64) ([]byte, error) {
	bs := int64(1) << z.blockLog
	var ptr [8]byte
	at := int64(z.headerSize) + blk*4
	if at+8 > rawSize {
		return nil, fmt.Errorf("%w: zisofs block table entry %d outside the file", ErrCorrupt, blk)
	}
	if _, err := raw.ReadAt(ptr[:], at); err != nil {
		return nil, fmt.Errorf("iso9660: reading zisofs block table: %w", err)
	}
	start, end := int64(binary.LittleEndian.Uint32(ptr[:])), int64(binary.LittleEndian.Uint32(ptr[4:]))
	want := min(bs, int64(z.size)-blk*bs)
	if start == end {
		return make([]byte, want), nil
	}
	if start > end || end > rawSize || end-start > 2*bs {
		return nil, fmt.Errorf("%w: zisofs block %d at %d..%d of %d", ErrCorrupt, blk, start, end, rawSize)
	}
	comp := make([]byte, end-start)
	if _, err := raw.ReadAt(comp, start); err != nil {
		return nil, fmt.Errorf("iso9660: reading zisofs block: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(comp))
	if err != nil {
		return nil, fmt.Errorf("%w: zisofs block %d: %w", ErrCorrupt, blk, err)
	}
	out := make([]byte, bs+1)
	n, err := io.ReadFull(zr, out)
	if n > int(bs) || (err != nil && err != io.ErrUnexpectedEOF && err != io.EOF) {
		return nil, fmt.Errorf("%w: zisofs block %d does not inflate to at most %d bytes: %v", ErrCorrupt, blk, bs, err)
	}
	return out[:n], nil
}
