// Package vhd reads Microsoft's Virtual Hard Disk (VHD, "vpc") images: fixed, dynamic and differencing,
// with footer and header checksums verified, sector bitmaps honoured, and the parent named by its
// locators (W2ru, W2ku, MacX) and identified by its UUID. Nothing is ever written.
package vhd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/vddk/layer"
)

const (
	footerSize    = 512
	dynHeaderSize = 1024
	typeFixed     = 2
	typeDynamic   = 3
	typeDiff      = 4
	unallocated   = 0xffffffff
	maxBlockSize  = 1 << 28 // 256 MiB: the largest block Hyper-V writes is 2 MiB; bitmaps stay 64 KiB
	maxLocator    = 64 << 10
)

// IsFooter tells whether b starts with a VHD footer cookie.
func IsFooter(b []byte) bool { return bytes.HasPrefix(b, []byte("conectix")) }

// Image is an opened VHD file, safe for concurrent use.
type Image struct {
	r           io.ReaderAt
	fileSize    int64
	size        int64
	typ         uint32
	id          string
	blockSize   int64
	bitmapBytes int64 // the sector bitmap before each block, padded to a sector
	bat         []uint32
	meta        [][2]int64 // byte ranges of metadata no block may overlap
	parent      layer.Parent
	bitmaps     *layer.Cache
}

func checksum(b []byte, field int) uint32 {
	var sum uint32
	for i, c := range b {
		if i < field || i >= field+4 {
			sum += uint32(c)
		}
	}
	return ^sum
}

// uuid formats 16 bytes as a UUID string, as stored (VHD UUIDs are compared byte for byte).
func uuid(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// parseFooter checks one copy of the footer.
func parseFooter(b []byte) error {
	if !IsFooter(b) {
		return fmt.Errorf("no conectix cookie")
	}
	if got, want := binary.BigEndian.Uint32(b[64:]), checksum(b[:footerSize], 64); got != want {
		return fmt.Errorf("checksum %#08x, the bytes sum to %#08x", got, want)
	}
	if v := binary.BigEndian.Uint32(b[12:]); v>>16 != 1 {
		return layer.Unsupported("VHD format version %#x", v)
	}
	return nil
}

// Open parses the footer (or its copy at the start of a dynamic disk), the dynamic header and the BAT.
func Open(r io.ReaderAt, fileSize int64, name string) (*Image, error) {
	if fileSize < footerSize {
		return nil, fmt.Errorf("VHD of %d bytes is shorter than its footer", fileSize)
	}
	tail := make([]byte, footerSize)
	if err := layer.ReadFull(r, tail, fileSize-footerSize, "VHD footer"); err != nil {
		return nil, err
	}
	head := make([]byte, footerSize)
	if err := layer.ReadFull(r, head, 0, "VHD footer copy"); err != nil {
		return nil, err
	}
	ft := tail
	tailErr := parseFooter(tail)
	if tailErr != nil {
		// Only a dynamic disk has a copy at the start; a fixed disk's first sector is the guest's.
		if err := parseFooter(head); err != nil || binary.BigEndian.Uint32(head[60:]) == typeFixed {
			return nil, fmt.Errorf("VHD footer at byte %d: %w", fileSize-footerSize, tailErr)
		}
		slog.Warn("VHD footer at the end is damaged; using its copy at the start", "file", name, "error", tailErr)
		ft = head
	} else if IsFooter(head) && !bytes.Equal(head, tail) && binary.BigEndian.Uint32(tail[60:]) != typeFixed {
		if err := parseFooter(head); err != nil {
			slog.Warn("VHD footer copy at the start is damaged; using the footer at the end", "file", name, "error", err)
		}
	}
	be := binary.BigEndian
	im := &Image{r: r, fileSize: fileSize, typ: be.Uint32(ft[60:]), id: uuid(ft[68:84])}
	im.size = int64(be.Uint64(ft[48:]))
	// qemu sizes disks of the creators that size by geometry (Virtual PC, old qemu) from the geometry.
	creator := string(ft[28:32])
	if geo := be.Uint32(ft[56:]); (creator == "vpc " || creator == "qemu") && geo != 65535<<16|16<<8|255 {
		im.size = int64(geo>>16) * int64(geo>>8&0xff) * int64(geo&0xff) * 512
	}
	if im.size < 0 || im.size > 1<<50 {
		return nil, fmt.Errorf("VHD current size %d is out of range", im.size)
	}
	switch im.typ {
	case typeFixed:
		if tailErr != nil || im.size > fileSize-footerSize {
			return nil, fmt.Errorf("fixed VHD of %d bytes is larger than its file", im.size)
		}
		return im, nil
	case typeDynamic, typeDiff:
	default:
		return nil, layer.Unsupported("VHD disk type %d", im.typ)
	}
	dynOff := be.Uint64(ft[16:])
	if dynOff < footerSize || dynOff > uint64(fileSize-dynHeaderSize) {
		return nil, fmt.Errorf("VHD dynamic header offset %d lies outside the %d-byte file", dynOff, fileSize)
	}
	dh := make([]byte, dynHeaderSize)
	if err := layer.ReadFull(r, dh, int64(dynOff), "VHD dynamic header"); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(dh, []byte("cxsparse")) {
		return nil, fmt.Errorf("VHD dynamic header at byte %d has no cxsparse cookie", dynOff)
	}
	if got, want := be.Uint32(dh[36:]), checksum(dh, 36); got != want {
		return nil, fmt.Errorf("VHD dynamic header checksum %#08x, the bytes sum to %#08x", got, want)
	}
	batOff, entries := be.Uint64(dh[16:]), int64(be.Uint32(dh[28:]))
	im.blockSize = int64(be.Uint32(dh[32:]))
	if im.blockSize < 512 || im.blockSize > maxBlockSize || im.blockSize&(im.blockSize-1) != 0 {
		return nil, fmt.Errorf("VHD block size %d is not a power of two from 512 bytes to 256 MiB", im.blockSize)
	}
	im.bitmapBytes = (im.blockSize/512/8 + 511) &^ 511
	need := (im.size + im.blockSize - 1) / im.blockSize
	if entries < need {
		return nil, fmt.Errorf("VHD BAT has %d entries, the disk's %d bytes need %d", entries, im.size, need)
	}
	if batOff > uint64(fileSize) || uint64(need*4) > uint64(fileSize)-batOff {
		return nil, fmt.Errorf("VHD BAT (%d entries at byte %d) runs past the end of the %d-byte file", need, batOff, fileSize)
	}
	raw := make([]byte, need*4)
	if err := layer.ReadFull(r, raw, int64(batOff), "VHD BAT"); err != nil {
		return nil, err
	}
	im.bat = make([]uint32, need)
	for i := range im.bat {
		im.bat[i] = be.Uint32(raw[i*4:])
	}
	im.meta = [][2]int64{{0, footerSize}, {int64(dynOff), int64(dynOff) + dynHeaderSize}, {int64(batOff), int64(batOff) + entries*4}}
	im.bitmaps = layer.NewCache(max(16, int((4<<20)/im.bitmapBytes)))
	if im.typ == typeDiff {
		if err := im.readParent(dh); err != nil {
			return nil, err
		}
	}
	return im, nil
}

// readParent reads the parent's UUID, its name and the locators.
func (im *Image) readParent(dh []byte) error {
	be := binary.BigEndian
	im.parent.ID = uuid(dh[40:56])
	name := utf16String(dh[64:576], true)
	var rel, abs, mac string
	for i := range 8 {
		e := dh[576+24*i:]
		code, n, off := be.Uint32(e), int64(be.Uint32(e[8:])), int64(be.Uint64(e[16:]))
		if code == 0 || n == 0 {
			continue
		}
		if n > maxLocator || off < 0 || off > im.fileSize || n > im.fileSize-off {
			return fmt.Errorf("VHD parent locator %d (%d bytes at byte %d) lies outside the file", i, n, off)
		}
		b := make([]byte, n)
		if err := layer.ReadFull(im.r, b, off, "VHD parent locator"); err != nil {
			return err
		}
		switch code {
		case 0x57327275: // W2ru: relative Windows path, UTF-16LE
			rel = utf16String(b, false)
		case 0x57326b75: // W2ku: absolute Windows path, UTF-16LE
			abs = utf16String(b, false)
		case 0x4d616358: // MacX: file URL, UTF-8
			if u, err := url.Parse(strings.TrimRight(string(b), "\x00")); err == nil && u.Path != "" {
				mac = u.Path
			}
		}
	}
	for _, n := range []string{rel, abs, mac, name} {
		if n == "" {
			continue
		}
		if im.parent.Name == "" {
			im.parent.Name = n
		} else {
			im.parent.Names = append(im.parent.Names, n)
		}
	}
	if im.parent.Name == "" {
		return fmt.Errorf("differencing VHD names no parent (no locator, no parent name)")
	}
	return nil
}

func utf16String(b []byte, big bool) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		var c uint16
		if big {
			c = binary.BigEndian.Uint16(b[i:])
		} else {
			c = binary.LittleEndian.Uint16(b[i:])
		}
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// Size is the virtual disk's size in bytes.
func (im *Image) Size() int64 { return im.size }

// Close releases nothing: the caller owns the file.
func (im *Image) Close() error { return nil }

// Describe says what the image is.
func (im *Image) Describe() layer.Description {
	v := map[uint32]string{typeFixed: "fixed", typeDynamic: "dynamic", typeDiff: "differencing"}[im.typ]
	return layer.Description{Format: "vhd", Variant: v, ID: im.id, BlockSize: im.blockSize, Parent: im.parent}
}

// block returns the file offset of block b's data and its sector bitmap, or ok false when the block is
// not allocated.
func (im *Image) block(b int64) (data int64, bitmap []byte, ok bool, err error) {
	e := im.bat[b]
	if e == unallocated {
		return 0, nil, false, nil
	}
	start := int64(e) * 512
	end := start + im.bitmapBytes + im.blockSize
	if end > im.fileSize {
		return 0, nil, false, fmt.Errorf("VHD block %d (BAT sector %d) runs past the end of the %d-byte file", b, e, im.fileSize)
	}
	for _, m := range im.meta {
		if start < m[1] && m[0] < end {
			return 0, nil, false, fmt.Errorf("VHD block %d (BAT sector %d) overlaps the image's headers or BAT", b, e)
		}
	}
	if bm, ok := im.bitmaps.Get(start); ok {
		return start + im.bitmapBytes, bm, true, nil
	}
	bm := make([]byte, im.bitmapBytes)
	if err := layer.ReadFull(im.r, bm, start, "VHD sector bitmap"); err != nil {
		return 0, nil, false, err
	}
	im.bitmaps.Put(start, bm)
	return start + im.bitmapBytes, bm, true, nil
}

// run describes [off, off+limit) up to the end of its block or of the run of sectors with one state.
func (im *Image) run(off, limit int64) (st layer.State, n int64, host int64, err error) {
	if im.typ == typeFixed {
		return layer.Data, limit, off, nil
	}
	b := off / im.blockSize
	in := off % im.blockSize
	n = min(limit, im.blockSize-in)
	data, bm, ok, err := im.block(b)
	if err != nil || !ok {
		return layer.None, n, 0, err
	}
	bit := func(s int64) bool { return bm[s/8]>>(7-s%8)&1 != 0 }
	s := in / 512
	set := bit(s)
	e := s + 1
	for ; e*512 < in+n && bit(e) == set; e++ {
	}
	n = min(n, e*512-in)
	if !set {
		return layer.None, n, 0, nil
	}
	return layer.Data, n, data + in, nil
}

// ReadAt fills p from virtual offset off; ranges not held here come from parent.
func (im *Image) ReadAt(p []byte, off int64, parent layer.ReadFunc) error {
	return layer.ReadRuns(im.r, im.run, p, off, parent, "VHD data")
}

// Span says where [off, off+n) lies when it is one run.
func (im *Image) Span(off, n int64) (layer.State, int64, bool) { return layer.SpanRuns(im.run, off, n) }

// Alloc reports the state of [off, off+n).
func (im *Image) Alloc(off, n int64, emit func(off, n int64, st layer.State)) error {
	return layer.AllocRuns(im.run, off, n, emit)
}
