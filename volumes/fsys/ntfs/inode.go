package ntfs

import (
	"cmp"
	"encoding/binary"
	"io"
	"slices"
	"time"
)

// Well-known MFT record numbers.
const (
	recMFT       = 0
	recVolume    = 3
	recRoot      = 5
	recBitmap    = 6
	recUpCase    = 10
	recFirstUser = 16 // ntfs-3g hides records below this unless asked to show system files
)

// File attribute bits of $STANDARD_INFORMATION.
const (
	fileAttrHidden    = 0x0002
	fileAttrSystem    = 0x0004
	fileAttrReparse   = 0x0400
	fileAttrEncrypted = 0x4000
)

// maxExtensionRecords bounds the records one attribute list may pull in; real files need a few
// dozen even when heavily fragmented.
const maxExtensionRecords = 4096

// inode is a base MFT record with the attributes of all its extension records merged in.
type inode struct {
	num       uint64
	seq       uint16
	flags     uint16
	linkCount uint16
	attrs     []*attribute

	fileAttrs                  uint32
	btime, mtime, ctime, atime time.Time
	hasStdInfo                 bool
}

// find returns the attribute of the given type and name (nil when absent).
func (n *inode) find(typ uint32, name string) *attribute {
	for _, a := range n.attrs {
		if a.typ == typ && a.name == name {
			return a
		}
	}
	return nil
}

func (n *inode) isDir() bool { return n.flags&recordIsDirectory != 0 }

// ntfsTime converts 100 ns intervals since 1601-01-01 UTC.
// A zero value is 1601 itself, as ntfs-3g reports it.
func ntfsTime(v uint64) time.Time {
	const epochDiff = 116444736000000000 // 1601 → 1970 in 100 ns units
	t := int64(v - epochDiff)
	if v < epochDiff {
		t = -int64(epochDiff - v)
	}
	return time.Unix(t/1e7, (t%1e7)*100).UTC()
}

// mftChunkBytes is how much of $MFT one read brings in: records of one directory are mostly
// neighbours, and fewer, larger reads are what a cold disk wants.
const mftChunkBytes = 64 << 10

// readRecord returns a private copy of one raw MFT record (parsing applies fixups in place).
func (f *FS) readRecord(num uint64) ([]byte, error) {
	if num >= f.mftRecords {
		return nil, corrupt("MFT record %d beyond the %d records of $MFT", num, f.mftRecords)
	}
	rs := uint64(f.boot.recordSize)
	per := max(mftChunkBytes/rs, 1)
	chunk := num / per
	data, ok := f.mftChunks.Get(chunk)
	if !ok {
		n := min(per, f.mftRecords-chunk*per)
		data = make([]byte, n*rs)
		if _, err := f.mft.ReadAt(data, int64(chunk*per*rs)); err != nil && err != io.EOF {
			return nil, wrapIO(err, "MFT record %d", num)
		}
		f.mftChunks.Put(chunk, data, len(data))
	}
	at := (num - chunk*per) * rs
	return append([]byte(nil), data[at:at+rs]...), nil
}

// inode loads a base record with its extension records, from the cache when it can.
func (f *FS) inode(num uint64) (*inode, error) {
	if n, ok := f.inodes.Get(num); ok {
		return n, nil
	}
	b, err := f.readRecord(num)
	if err != nil {
		return nil, err
	}
	n, err := f.buildInode(num, b, f.readRecord)
	if err != nil {
		return nil, err
	}
	f.inodes.Put(num, n, 1)
	return n, nil
}

// buildInode parses a base record, loads the extension records its $ATTRIBUTE_LIST names (through
// read, which for $MFT itself reads via a partial run list) and merges split attributes.
func (f *FS) buildInode(num uint64, b []byte, read func(uint64) ([]byte, error)) (*inode, error) {
	rec, err := parseRecord(b)
	if err != nil {
		return nil, wrapAt(err, num)
	}
	if rec.flags&recordInUse == 0 {
		return nil, corrupt("MFT record %d is not in use", num)
	}
	if rec.baseRef != 0 {
		return nil, corrupt("MFT record %d is an extension of record %d, not a file", num, rec.baseRef)
	}
	n := &inode{num: num, seq: rec.seq, flags: rec.flags, linkCount: rec.linkCount}
	attrs := rec.attrs
	for _, a := range rec.attrs {
		if a.typ != attrAttributeList {
			continue
		}
		list, err := f.attrValue(num, a, 1<<20)
		if err != nil {
			return nil, wrapAt(err, num)
		}
		ext, err := extensionRecords(list, num)
		if err != nil {
			return nil, wrapAt(err, num)
		}
		if len(ext) > maxExtensionRecords {
			return nil, corrupt("MFT record %d: attribute list names %d extension records", num, len(ext))
		}
		for _, e := range ext {
			eb, err := read(e)
			if err != nil {
				return nil, err
			}
			er, err := parseRecord(eb)
			if err != nil {
				return nil, wrapAt(err, e)
			}
			if er.baseRef != num || er.flags&recordInUse == 0 {
				return nil, corrupt("MFT record %d: extension record %d does not belong to it", num, e)
			}
			attrs = append(attrs, er.attrs...)
		}
		break
	}
	if n.attrs, err = mergeExtents(attrs); err != nil {
		return nil, wrapAt(err, num)
	}
	if si := n.find(attrStandardInfo, ""); si != nil && si.resident && len(si.value) >= 0x24 {
		v := si.value
		n.btime = ntfsTime(binary.LittleEndian.Uint64(v[0:]))
		n.mtime = ntfsTime(binary.LittleEndian.Uint64(v[8:]))
		n.ctime = ntfsTime(binary.LittleEndian.Uint64(v[0x10:]))
		n.atime = ntfsTime(binary.LittleEndian.Uint64(v[0x18:]))
		n.fileAttrs = binary.LittleEndian.Uint32(v[0x20:])
		n.hasStdInfo = true
	}
	return n, nil
}

// extensionRecords lists the other records an $ATTRIBUTE_LIST value points at, without duplicates.
func extensionRecords(list []byte, base uint64) ([]uint64, error) {
	var out []uint64
	for off := 0; off+0x1A <= len(list); {
		l := int(binary.LittleEndian.Uint16(list[off+4:]))
		if l < 0x1A || off+l > len(list) {
			return nil, corrupt("attribute list entry at %d has bad length %d", off, l)
		}
		ref := binary.LittleEndian.Uint64(list[off+0x10:]) & 0xFFFFFFFFFFFF
		if ref != base && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
		off += l
	}
	return out, nil
}

// mergeExtents joins the pieces of non-resident attributes that live in several records into one
// attribute whose run list covers every VCN, in order.
func mergeExtents(attrs []*attribute) ([]*attribute, error) {
	type key struct {
		typ  uint32
		name string
	}
	var out []*attribute
	pieces := map[key][]*attribute{}
	for _, a := range attrs {
		if a.typ == attrAttributeList {
			continue
		}
		if a.resident {
			out = append(out, a)
			continue
		}
		k := key{a.typ, a.name}
		if len(pieces[k]) == 0 {
			out = append(out, nil) // placeholder keeps the record order
			pieces[k] = []*attribute{a}
			out[len(out)-1] = a
			continue
		}
		pieces[k] = append(pieces[k], a)
	}
	for i, a := range out {
		if a.resident {
			continue
		}
		ps := pieces[key{a.typ, a.name}]
		if len(ps) == 1 {
			if a.startVCN != 0 {
				return nil, corrupt("attribute %#x %q: first extent starts at VCN %d", a.typ, a.name, a.startVCN)
			}
			continue
		}
		slices.SortFunc(ps, func(x, y *attribute) int { return cmp.Compare(x.startVCN, y.startVCN) })
		if ps[0].startVCN != 0 {
			return nil, corrupt("attribute %#x %q: first extent starts at VCN %d", a.typ, a.name, ps[0].startVCN)
		}
		m := *ps[0]
		m.runs = slices.Clone(ps[0].runs)
		next := ps[0].lastVCN + 1
		for _, p := range ps[1:] {
			if p.startVCN != next {
				return nil, corrupt("attribute %#x %q: extent starts at VCN %d, expected %d", a.typ, a.name, p.startVCN, next)
			}
			m.runs = append(m.runs, p.runs...)
			next = p.lastVCN + 1
		}
		m.lastVCN = next - 1
		out[i] = &m
	}
	return out, nil
}

// hasParent reports whether one of the inode's $FILE_NAME attributes names dir as its parent.
func (n *inode) hasParent(dir uint64) bool {
	for _, a := range n.attrs {
		if a.typ == attrFileName && a.resident && len(a.value) >= 8 &&
			binary.LittleEndian.Uint64(a.value)&0xFFFFFFFFFFFF == dir {
			return true
		}
	}
	return false
}
