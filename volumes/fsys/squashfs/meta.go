package squashfs

import (
	"encoding/binary"
	"fmt"
)

// metaPos addresses a byte inside the metadata stream: the disk position of a metadata block's header
// and an offset into its decompressed contents.
type metaPos struct {
	block  int64
	offset int
}

// metaBlock returns the decompressed metadata block whose 2-byte header sits at pos.
func (f *FS) metaBlock(pos int64) (*cacheEntry, error) {
	if e, ok := f.metaCache.get(pos); ok {
		return e, nil
	}
	if pos < 0 || pos+2 > f.end {
		return nil, fmt.Errorf("%w: metadata block at %d outside image", ErrCorrupt, pos)
	}
	var hdr [2]byte
	if _, err := f.r.ReadAt(hdr[:], pos); err != nil {
		return nil, fmt.Errorf("squashfs: reading metadata header at %d: %w", pos, err)
	}
	h := binary.LittleEndian.Uint16(hdr[:])
	n := int64(h & 0x7fff)
	if n == 0 || n > metaBlockSize || pos+2+n > f.end {
		return nil, fmt.Errorf("%w: metadata block at %d has length %d", ErrCorrupt, pos, n)
	}
	raw := make([]byte, n)
	if _, err := f.r.ReadAt(raw, pos+2); err != nil {
		return nil, fmt.Errorf("squashfs: reading metadata block at %d: %w", pos, err)
	}
	data := raw
	if h&0x8000 == 0 {
		var err error
		if data, err = f.dec.decompress(raw, metaBlockSize); err != nil {
			return nil, fmt.Errorf("metadata block at %d: %w", pos, err)
		}
	}
	e := &cacheEntry{key: pos, data: data, diskSz: int(2 + n)}
	f.metaCache.put(e)
	return e, nil
}

// readMeta copies n bytes of metadata starting at p, crossing block boundaries, and returns the
// position after them.
func (f *FS) readMeta(p metaPos, n int) ([]byte, metaPos, error) {
	// Every metadata block holds at most 8 KiB and takes at least 3 bytes on disk, which bounds what a
	// request can honestly ask for.
	if n < 0 || int64(n)/metaBlockSize*3 > f.end {
		return nil, p, fmt.Errorf("%w: metadata request of %d bytes", ErrCorrupt, n)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		e, err := f.metaBlock(p.block)
		if err != nil {
			return nil, p, err
		}
		if p.offset > len(e.data) {
			return nil, p, fmt.Errorf("%w: offset %d past metadata block at %d (%d bytes)",
				ErrCorrupt, p.offset, p.block, len(e.data))
		}
		take := min(n-len(out), len(e.data)-p.offset)
		out = append(out, e.data[p.offset:p.offset+take]...)
		p.offset += take
		if p.offset == len(e.data) {
			p = metaPos{block: p.block + int64(e.diskSz)}
		}
	}
	return out, p, nil
}

// metaReader decodes little-endian fields from the metadata stream.
type metaReader struct {
	f   *FS
	pos metaPos
	err error
}

func (m *metaReader) bytes(n int) []byte {
	if m.err != nil {
		return nil
	}
	var b []byte
	b, m.pos, m.err = m.f.readMeta(m.pos, n)
	return b
}

func (m *metaReader) u16() uint16 {
	if b := m.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (m *metaReader) u32() uint32 {
	if b := m.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (m *metaReader) u64() uint64 {
	if b := m.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// tableEntry reads entry i (of count, entSize bytes each) from a table stored as metadata blocks whose
// disk positions are listed as u64s at indexStart. Entries are fetched on demand so a hostile count
// never drives an allocation.
func (f *FS) tableEntry(indexStart uint64, count uint64, entSize int, i uint64) ([]byte, error) {
	if i >= count {
		return nil, fmt.Errorf("%w: table index %d out of %d entries", ErrCorrupt, i, count)
	}
	off := i * uint64(entSize)
	slot := int64(indexStart) + int64(off/metaBlockSize)*8
	if indexStart == noTable || slot < 0 || slot+8 > f.end {
		return nil, fmt.Errorf("%w: lookup table slot for entry %d outside image", ErrCorrupt, i)
	}
	var ptr [8]byte
	if _, err := f.r.ReadAt(ptr[:], slot); err != nil {
		return nil, fmt.Errorf("squashfs: reading lookup table: %w", err)
	}
	blk := int64(binary.LittleEndian.Uint64(ptr[:]))
	b, _, err := f.readMeta(metaPos{block: blk, offset: int(off % metaBlockSize)}, entSize)
	return b, err
}
