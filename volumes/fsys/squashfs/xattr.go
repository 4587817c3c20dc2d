package squashfs

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Xattr name prefixes by the type stored on disk; 0x100 marks an out-of-line value.
var xattrPrefixes = [...]string{0: "user.", 1: "trusted.", 2: "security."}

const xattrOutOfLine = 0x100

type xattrTable struct {
	kvStart uint64 // start of the key/value metadata stream
	count   uint32 // number of xattr ids
	index   uint64 // position of the u64 index of id-table blocks
}

func (f *FS) loadXattrTable() error {
	if f.sb.xattrTableStart == noTable || f.sb.flags&flagNoXattrs != 0 {
		return nil
	}
	b := make([]byte, 16)
	if int64(f.sb.xattrTableStart)+16 > f.end {
		return fmt.Errorf("%w: xattr table header outside image", ErrCorrupt)
	}
	if _, err := f.r.ReadAt(b, int64(f.sb.xattrTableStart)); err != nil {
		return fmt.Errorf("squashfs: reading xattr table: %w", err)
	}
	f.xattrs = &xattrTable{
		kvStart: binary.LittleEndian.Uint64(b),
		count:   binary.LittleEndian.Uint32(b[8:]),
		index:   f.sb.xattrTableStart + 16,
	}
	if f.xattrs.kvStart >= f.sb.xattrTableStart {
		return fmt.Errorf("%w: xattr key/value table at %d", ErrCorrupt, f.xattrs.kvStart)
	}
	return nil
}

// xattrIDEntry locates one inode's attributes in the key/value stream.
type xattrIDEntry struct {
	ref   uint64
	count uint32
	size  uint32
}

func (f *FS) xattrID(idx uint32) (xattrIDEntry, error) {
	if f.xattrs == nil {
		return xattrIDEntry{}, fmt.Errorf("%w: inode has xattr id %d but the image has no xattr table", ErrCorrupt, idx)
	}
	ent, err := f.tableEntry(f.xattrs.index, uint64(f.xattrs.count), 16, uint64(idx))
	if err != nil {
		return xattrIDEntry{}, fmt.Errorf("xattr id %d: %w", idx, err)
	}
	id := xattrIDEntry{
		ref:   binary.LittleEndian.Uint64(ent),
		count: binary.LittleEndian.Uint32(ent[8:]),
		size:  binary.LittleEndian.Uint32(ent[12:]),
	}
	// Each pair needs at least 8 bytes (key header and value length), so size bounds count.
	if uint64(id.count)*8 > uint64(id.size) {
		return xattrIDEntry{}, fmt.Errorf("%w: xattr id %d claims %d pairs in %d bytes", ErrCorrupt, idx, id.count, id.size)
	}
	return id, nil
}

// xattrList decodes every attribute of xattr id idx, as full names mapped to values.
func (f *FS) xattrList(idx uint32) (map[string][]byte, error) {
	out := map[string][]byte{}
	if idx == noIndex {
		return out, nil
	}
	id, err := f.xattrID(idx)
	if err != nil {
		return nil, err
	}
	m := &metaReader{f: f, pos: f.xattrPos(id.ref)}
	for range id.count {
		typ, nameLen := m.u16(), int(m.u16())
		name := string(m.bytes(nameLen))
		valLen := m.u32()
		if m.err != nil {
			return nil, m.err
		}
		prefix := int(typ &^ xattrOutOfLine)
		if prefix >= len(xattrPrefixes) {
			return nil, fmt.Errorf("%w: xattr type %#x", ErrCorrupt, typ)
		}
		var val []byte
		if typ&xattrOutOfLine != 0 {
			if valLen != 8 {
				return nil, fmt.Errorf("%w: out-of-line xattr reference of %d bytes", ErrCorrupt, valLen)
			}
			vm := &metaReader{f: f, pos: f.xattrPos(m.u64())}
			n := vm.u32()
			if n > 1<<16 {
				return nil, fmt.Errorf("%w: xattr value of %d bytes", ErrCorrupt, n)
			}
			val = vm.bytes(int(n))
			if vm.err != nil {
				return nil, vm.err
			}
		} else {
			if valLen > 1<<16 {
				return nil, fmt.Errorf("%w: xattr value of %d bytes", ErrCorrupt, valLen)
			}
			val = m.bytes(int(valLen))
		}
		if m.err != nil {
			return nil, m.err
		}
		out[xattrPrefixes[prefix]+name] = val
	}
	return out, nil
}

func (f *FS) xattrPos(ref uint64) metaPos {
	return metaPos{block: int64(f.xattrs.kvStart) + int64(ref>>16), offset: int(ref & 0xffff)}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
