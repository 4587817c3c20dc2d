// Package vhdx reads Microsoft's VHDX images: the two headers (the valid one with the higher sequence
// number), the region table, the metadata (block size, logical sector size, virtual size, parent
// locator), and the BAT with its sector bitmap blocks, for fixed, dynamic and differencing disks. A log
// left dirty is replayed in memory, never written. Nothing is ever written.
package vhdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/vddk/layer"
)

const (
	mib          = 1 << 20
	headerSize   = 4 << 10
	regionSize   = 64 << 10
	maxEntries   = 2047
	maxVirtual   = 64 << 40 // the format's limit
	bitmapBlock  = mib      // a sector bitmap block
	maxLocatorKV = 256
)

// Block states of BAT entries.
const (
	stNotPresent = 0
	stUndefined  = 1
	stZero       = 2
	stUnmapped   = 3
	stFull       = 6
	stPartial    = 7
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// guid parses the canonical text form into the on-disk (mixed-endian) bytes.
func guid(s string) [16]byte {
	var g [16]byte
	h := strings.ReplaceAll(s, "-", "")
	var b [16]byte
	for i := range 16 {
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &b[i])
	}
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

// guidString formats on-disk GUID bytes in the canonical text form.
func guidString(g []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(g), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8:10], g[10:16])
}

var (
	regionBAT      = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
	regionMetadata = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	itemFileParams = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	itemVirtSize   = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	itemPage83     = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
	itemLogical    = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	itemPhysical   = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
	itemParent     = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
	locatorVHDX    = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")
)

// IsVHDX tells whether a file starts with the VHDX file type identifier.
func IsVHDX(head []byte) bool { return bytes.HasPrefix(head, []byte("vhdxfile")) }

// Image is an opened VHDX file, safe for concurrent use.
type Image struct {
	r          io.ReaderAt // the file, seen through the replayed log
	fileSize   int64
	size       int64
	blockSize  int64
	sectorSize int64
	chunkRatio int64
	bat        []uint64
	hasParent  bool
	id         string // the data write GUID: what a child's parent_linkage names
	diskID     string
	parent     layer.Parent
	meta       [][2]int64 // byte ranges no block may overlap
	bitmaps    *layer.Cache
	replayed   int
}

// Open parses the headers, replays a dirty log in memory, and reads the region table, metadata and BAT.
func Open(f io.ReaderAt, fileSize int64) (*Image, error) {
	if fileSize < mib {
		return nil, fmt.Errorf("VHDX of %d bytes is shorter than its headers and region tables", fileSize)
	}
	id := make([]byte, 8)
	if err := layer.ReadFull(f, id, 0, "VHDX file identifier"); err != nil {
		return nil, err
	}
	if !IsVHDX(id) {
		return nil, fmt.Errorf("not a VHDX: no vhdxfile identifier")
	}
	im := &Image{r: f, fileSize: fileSize}
	var hdr []byte
	var seq uint64
	var errs []string
	for _, off := range []int64{64 << 10, 128 << 10} {
		h := make([]byte, headerSize)
		if err := layer.ReadFull(f, h, off, "VHDX header"); err != nil {
			return nil, err
		}
		if err := checkCRC(h, "head"); err != nil {
			errs = append(errs, fmt.Sprintf("header at byte %d: %v", off, err))
			continue
		}
		if s := binary.LittleEndian.Uint64(h[8:]); hdr == nil || s > seq {
			hdr, seq = h, s
		}
	}
	if hdr == nil {
		return nil, fmt.Errorf("no valid VHDX header (%s)", strings.Join(errs, "; "))
	}
	le := binary.LittleEndian
	if v := le.Uint16(hdr[66:]); v != 1 {
		return nil, layer.Unsupported("VHDX version %d", v)
	}
	im.id = guidString(hdr[32:48])
	im.meta = [][2]int64{{0, mib}}
	if logGUID := hdr[48:64]; !bytes.Equal(logGUID, make([]byte, 16)) {
		logOff, logLen := int64(le.Uint64(hdr[72:])), int64(le.Uint32(hdr[68:]))
		if v := le.Uint16(hdr[64:]); v != 0 {
			return nil, layer.Unsupported("VHDX log version %d", v)
		}
		ov, err := replayLog(f, fileSize, logOff, logLen, logGUID)
		if err != nil {
			return nil, fmt.Errorf("VHDX log: %w", err)
		}
		im.r, im.replayed = ov, len(ov.ops)
		im.fileSize = max(fileSize, ov.size)
		im.meta = append(im.meta, [2]int64{logOff, logOff + logLen})
	}
	if err := im.readRegions(); err != nil {
		return nil, err
	}
	return im, nil
}

func checkCRC(b []byte, sig string) error {
	if string(b[:4]) != sig {
		return fmt.Errorf("no %q signature", sig)
	}
	want := binary.LittleEndian.Uint32(b[4:])
	c := crc32.Update(0, castagnoli, b[:4])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	c = crc32.Update(c, castagnoli, b[8:])
	if c != want {
		return fmt.Errorf("checksum %#08x, the bytes give %#08x", want, c)
	}
	return nil
}

// readRegions reads the region table, the metadata and the BAT.
func (im *Image) readRegions() error {
	le := binary.LittleEndian
	var rt []byte
	var errs []string
	for _, off := range []int64{192 << 10, 256 << 10} {
		b := make([]byte, regionSize)
		if err := layer.ReadFull(im.r, b, off, "VHDX region table"); err != nil {
			return err
		}
		if err := checkCRC(b, "regi"); err != nil {
			errs = append(errs, fmt.Sprintf("region table at byte %d: %v", off, err))
			continue
		}
		rt = b
		break
	}
	if rt == nil {
		return fmt.Errorf("no valid VHDX region table (%s)", strings.Join(errs, "; "))
	}
	n := le.Uint32(rt[8:])
	if n > maxEntries {
		return fmt.Errorf("VHDX region table has %d entries (at most %d)", n, maxEntries)
	}
	var batOff, batLen, metaOff, metaLen int64
	for i := range int(n) {
		e := rt[16+32*i:]
		off, length := int64(le.Uint64(e[16:])), int64(le.Uint32(e[24:]))
		if off < mib || off%mib != 0 || length%mib != 0 || off > im.fileSize || length > im.fileSize-off {
			return fmt.Errorf("VHDX region %d (%d bytes at byte %d) is misaligned or outside the %d-byte file", i, length, off, im.fileSize)
		}
		switch [16]byte(e[:16]) {
		case regionBAT:
			batOff, batLen = off, length
		case regionMetadata:
			metaOff, metaLen = off, length
		default:
			if le.Uint32(e[28:])&1 != 0 {
				return layer.Unsupported("VHDX required region %s", guidString(e[:16]))
			}
		}
		im.meta = append(im.meta, [2]int64{off, off + length})
	}
	if batLen == 0 || metaLen == 0 {
		return fmt.Errorf("VHDX region table lacks the BAT or the metadata region")
	}
	if err := im.readMetadata(metaOff, metaLen); err != nil {
		return err
	}
	// The BAT: payload entries interleaved with one sector bitmap entry per chunk.
	blocks := (im.size + im.blockSize - 1) / im.blockSize
	chunks := (blocks + im.chunkRatio - 1) / im.chunkRatio
	entries := blocks + max(0, blocks-1)/im.chunkRatio
	if im.hasParent {
		entries = chunks * (im.chunkRatio + 1)
	}
	if entries*8 > batLen {
		return fmt.Errorf("VHDX BAT region of %d bytes is too small for %d entries", batLen, entries)
	}
	raw := make([]byte, entries*8)
	if err := layer.ReadFull(im.r, raw, batOff, "VHDX BAT"); err != nil {
		return err
	}
	im.bat = make([]uint64, entries)
	for i := range im.bat {
		im.bat[i] = le.Uint64(raw[i*8:])
	}
	im.bitmaps = layer.NewCache(8)
	return nil
}

// readMetadata reads the metadata table and its items.
func (im *Image) readMetadata(off, length int64) error {
	le := binary.LittleEndian
	tbl := make([]byte, 64<<10)
	if err := layer.ReadFull(im.r, tbl, off, "VHDX metadata table"); err != nil {
		return err
	}
	if string(tbl[:8]) != "metadata" {
		return fmt.Errorf("VHDX metadata table at byte %d has no signature", off)
	}
	n := int(le.Uint16(tbl[10:]))
	if n > maxEntries {
		return fmt.Errorf("VHDX metadata table has %d entries (at most %d)", n, maxEntries)
	}
	items := map[[16]byte][]byte{}
	for i := range n {
		e := tbl[32+32*i:]
		itemOff, il, flags := int64(le.Uint32(e[16:])), int64(le.Uint32(e[20:])), le.Uint32(e[24:])
		if il == 0 {
			continue
		}
		if itemOff < 64<<10 || itemOff > length || il > length-itemOff || il > mib {
			return fmt.Errorf("VHDX metadata item %d (%d bytes at %d) lies outside its region", i, il, itemOff)
		}
		id := [16]byte(e[:16])
		switch id {
		case itemFileParams, itemVirtSize, itemPage83, itemLogical, itemPhysical, itemParent:
		default:
			if flags&4 != 0 {
				return layer.Unsupported("VHDX required metadata item %s", guidString(id[:]))
			}
			continue
		}
		b := make([]byte, il)
		if err := layer.ReadFull(im.r, b, off+itemOff, "VHDX metadata item"); err != nil {
			return err
		}
		items[id] = b
	}
	fp, vs, ls := items[itemFileParams], items[itemVirtSize], items[itemLogical]
	if len(fp) < 8 || len(vs) < 8 || len(ls) < 4 {
		return fmt.Errorf("VHDX metadata lacks the file parameters, virtual size or logical sector size")
	}
	im.blockSize = int64(le.Uint32(fp))
	im.hasParent = le.Uint32(fp[4:])&2 != 0
	if im.blockSize < mib || im.blockSize > 256*mib || im.blockSize&(im.blockSize-1) != 0 {
		return fmt.Errorf("VHDX block size %d is not a power of two from 1 to 256 MiB", im.blockSize)
	}
	im.sectorSize = int64(le.Uint32(ls))
	if im.sectorSize != 512 && im.sectorSize != 4096 {
		return fmt.Errorf("VHDX logical sector size %d is neither 512 nor 4096", im.sectorSize)
	}
	im.size = int64(le.Uint64(vs))
	if im.size <= 0 || im.size > maxVirtual || im.size%im.sectorSize != 0 {
		return fmt.Errorf("VHDX virtual size %d is out of range or not a multiple of the %d-byte sector", im.size, im.sectorSize)
	}
	im.chunkRatio = (1 << 23) * im.sectorSize / im.blockSize
	if p := items[itemPage83]; len(p) >= 16 {
		im.diskID = guidString(p)
	}
	if im.hasParent {
		if err := im.readLocator(items[itemParent]); err != nil {
			return err
		}
	}
	return nil
}

// readLocator reads the parent locator's keys: the parent's data write GUID and its paths.
func (im *Image) readLocator(b []byte) error {
	le := binary.LittleEndian
	if len(b) < 20 {
		return fmt.Errorf("differencing VHDX has no parent locator")
	}
	if [16]byte(b[:16]) != locatorVHDX {
		return layer.Unsupported("VHDX parent locator type %s", guidString(b[:16]))
	}
	n := int(le.Uint16(b[18:]))
	if n > maxLocatorKV || 20+12*n > len(b) {
		return fmt.Errorf("VHDX parent locator has %d entries in %d bytes", n, len(b))
	}
	str := func(off uint32, l uint16) (string, error) {
		if int64(off)+int64(l) > int64(len(b)) || l%2 != 0 {
			return "", fmt.Errorf("VHDX parent locator entry (%d bytes at %d) lies outside the locator", l, off)
		}
		u := make([]uint16, l/2)
		for i := range u {
			u[i] = le.Uint16(b[int(off)+2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	kv := map[string]string{}
	for i := range n {
		e := b[20+12*i:]
		k, err := str(le.Uint32(e), le.Uint16(e[8:]))
		if err != nil {
			return err
		}
		v, err := str(le.Uint32(e[4:]), le.Uint16(e[10:]))
		if err != nil {
			return err
		}
		kv[k] = v
	}
	im.parent.ID = strings.Trim(strings.ToLower(kv["parent_linkage"]), "{}")
	for _, k := range []string{"relative_path", "absolute_win32_path", "volume_path"} {
		if v := kv[k]; v != "" {
			if im.parent.Name == "" {
				im.parent.Name = v
			} else {
				im.parent.Names = append(im.parent.Names, v)
			}
		}
	}
	if im.parent.Name == "" || im.parent.ID == "" {
		return fmt.Errorf("differencing VHDX parent locator lacks a path or parent_linkage")
	}
	return nil
}

// Size is the virtual disk's size in bytes.
func (im *Image) Size() int64 { return im.size }

// Close releases nothing: the caller owns the file.
func (im *Image) Close() error { return nil }

// Describe says what the image is.
func (im *Image) Describe() layer.Description {
	v := "dynamic"
	if im.hasParent {
		v = "differencing"
	}
	v += fmt.Sprintf(", %d-byte sectors", im.sectorSize)
	if im.replayed > 0 {
		v += fmt.Sprintf(", log replayed in memory (%d writes)", im.replayed)
	}
	return layer.Description{Format: "vhdx", Variant: v, ID: im.id, BlockSize: im.blockSize, Parent: im.parent}
}

// entry returns the BAT entry of payload block b, checked.
func (im *Image) entry(i int64, what string) (state int, off int64, err error) {
	e := im.bat[i]
	state, off = int(e&7), int64(e>>20)*mib
	if state != stFull && state != stPartial {
		return state, 0, nil
	}
	size := im.blockSize
	if what == "sector bitmap" {
		size = bitmapBlock
	}
	if off < mib || off > im.fileSize-size {
		return 0, 0, fmt.Errorf("VHDX %s block (BAT entry %d) at byte %d lies outside the %d-byte file", what, i, off, im.fileSize)
	}
	for _, m := range im.meta {
		if off < m[1] && m[0] < off+size {
			return 0, 0, fmt.Errorf("VHDX %s block (BAT entry %d) at byte %d overlaps the headers, log, BAT or metadata", what, i, off)
		}
	}
	return state, off, nil
}

// run describes [off, off+limit) up to the end of its block or of a run of sectors with one state.
func (im *Image) run(off, limit int64) (st layer.State, n, host int64, err error) {
	b := off / im.blockSize
	in := off % im.blockSize
	n = min(limit, im.blockSize-in)
	state, data, err := im.entry(b+b/im.chunkRatio, "payload")
	if err != nil {
		return 0, 0, 0, err
	}
	switch state {
	case stFull:
		return layer.Data, n, data + in, nil
	case stPartial:
		if !im.hasParent {
			return 0, 0, 0, fmt.Errorf("VHDX block %d is partially present in a disk without a parent", b)
		}
	case stZero, stUnmapped:
		return layer.Zero, n, 0, nil
	case stNotPresent, stUndefined:
		if im.hasParent {
			return layer.None, n, 0, nil
		}
		return layer.Zero, n, 0, nil
	default:
		return 0, 0, 0, fmt.Errorf("VHDX block %d has the undefined state %d", b, state)
	}
	// Partially present: the chunk's sector bitmap says which sectors are here.
	c := b / im.chunkRatio
	sbState, sbOff, err := im.entry(c*(im.chunkRatio+1)+im.chunkRatio, "sector bitmap")
	if err != nil {
		return 0, 0, 0, err
	}
	if sbState != stFull {
		return 0, 0, 0, fmt.Errorf("VHDX block %d is partially present but its sector bitmap is not (state %d)", b, sbState)
	}
	bm, ok := im.bitmaps.Get(sbOff)
	if !ok {
		bm = make([]byte, bitmapBlock)
		if err := layer.ReadFull(im.r, bm, sbOff, "VHDX sector bitmap"); err != nil {
			return 0, 0, 0, err
		}
		im.bitmaps.Put(sbOff, bm)
	}
	first := (off - c*im.chunkRatio*im.blockSize) / im.sectorSize
	bit := func(s int64) bool { return bm[s/8]>>(s%8)&1 != 0 }
	set := bit(first)
	count := int64(1)
	for count*im.sectorSize-off%im.sectorSize < n && bit(first+count) == set {
		count++
	}
	n = min(n, count*im.sectorSize-off%im.sectorSize)
	if !set {
		return layer.None, n, 0, nil
	}
	return layer.Data, n, data + in, nil
}

// ReadAt fills p from virtual offset off; ranges not held here come from parent.
func (im *Image) ReadAt(p []byte, off int64, parent layer.ReadFunc) error {
	return layer.ReadRuns(im.r, im.run, p, off, parent, "VHDX data")
}

// Span says where [off, off+n) lies when it is one run. With a replayed log the file's bytes are not
// the disk's (the log's writes live only in memory), so nothing is handed out.
func (im *Image) Span(off, n int64) (layer.State, int64, bool) {
	if im.replayed > 0 {
		return 0, 0, false
	}
	return layer.SpanRuns(im.run, off, n)
}

// Alloc reports the state of [off, off+n).
func (im *Image) Alloc(off, n int64, emit func(off, n int64, st layer.State)) error {
	return layer.AllocRuns(im.run, off, n, emit)
}
