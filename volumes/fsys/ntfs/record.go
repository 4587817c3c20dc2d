package ntfs

import (
	"encoding/binary"
	"unicode/utf16"
)

// Attribute type codes.
const (
	attrStandardInfo   = 0x10
	attrAttributeList  = 0x20
	attrFileName       = 0x30
	attrVolumeName     = 0x60
	attrData           = 0x80
	attrIndexRoot      = 0x90
	attrIndexAlloc     = 0xA0
	attrBitmap         = 0xB0
	attrReparsePoint   = 0xC0
	attrEnd            = 0xFFFFFFFF
	recordInUse        = 0x0001
	recordIsDirectory  = 0x0002
	attrFlagCompressed = 0x0001
	attrFlagEncrypted  = 0x4000
	attrFlagSparse     = 0x8000
)

// fixupStride is the distance between update-sequence slots: NTFS always protects 512-byte blocks.
const fixupStride = 512

// applyFixups checks and undoes the update sequence of a multi-sector record (FILE or INDX) in place.
func applyFixups(b []byte, magic string) error {
	if len(b) < 48 || string(b[:4]) != magic {
		return corrupt("record has no %q signature", magic)
	}
	off := int(binary.LittleEndian.Uint16(b[4:]))
	count := int(binary.LittleEndian.Uint16(b[6:]))
	if count == 0 || count-1 != len(b)/fixupStride || off+2*count > len(b) || off < 8 {
		return corrupt("%s record: bad update sequence (offset %d, count %d)", magic, off, count)
	}
	usn := b[off : off+2]
	for i := 1; i < count; i++ {
		end := i*fixupStride - 2
		if b[end] != usn[0] || b[end+1] != usn[1] {
			return corrupt("%s record: update sequence mismatch in block %d (torn write)", magic, i)
		}
		b[end] = b[off+2*i]
		b[end+1] = b[off+2*i+1]
	}
	return nil
}

// mftRecord is one parsed FILE record.
type mftRecord struct {
	seq       uint16
	linkCount uint16
	flags     uint16
	baseRef   uint64 // record number of the base record (0 for a base record)
	attrs     []*attribute
}

// attribute is one attribute header with its resident value or its run list. Non-resident attributes
// split across records are merged into one by the inode loader.
type attribute struct {
	typ      uint32
	name     string
	id       uint16
	flags    uint16
	resident bool
	value    []byte // resident value

	startVCN, lastVCN int64
	runs              []dataRun
	compUnit          uint8 // log2 of clusters per compression unit
	allocSize         int64
	dataSize          int64
	initSize          int64
	compSize          int64
}

func parseRecord(b []byte) (*mftRecord, error) {
	if err := applyFixups(b, "FILE"); err != nil {
		return nil, err
	}
	r := &mftRecord{
		seq:       binary.LittleEndian.Uint16(b[0x10:]),
		linkCount: binary.LittleEndian.Uint16(b[0x12:]),
		flags:     binary.LittleEndian.Uint16(b[0x16:]),
		baseRef:   binary.LittleEndian.Uint64(b[0x20:]) & 0xFFFFFFFFFFFF,
	}
	off := int(binary.LittleEndian.Uint16(b[0x14:]))
	used := int(binary.LittleEndian.Uint32(b[0x18:]))
	if used > len(b) || used < 0x30 {
		used = len(b)
	}
	for {
		if off < 0x18 || off+4 > used {
			return nil, corrupt("FILE record: attribute offset %d outside the %d used bytes", off, used)
		}
		typ := binary.LittleEndian.Uint32(b[off:])
		if typ == attrEnd {
			break
		}
		if off+16 > used {
			return nil, corrupt("FILE record: attribute header at %d truncated", off)
		}
		length := int(binary.LittleEndian.Uint32(b[off+4:]))
		if length < 16 || length%8 != 0 || off+length > used {
			return nil, corrupt("FILE record: attribute %#x at %d has bad length %d", typ, off, length)
		}
		a, err := parseAttribute(b[off : off+length])
		if err != nil {
			return nil, err
		}
		r.attrs = append(r.attrs, a)
		off += length
	}
	return r, nil
}

func parseAttribute(b []byte) (*attribute, error) {
	a := &attribute{
		typ:      binary.LittleEndian.Uint32(b),
		resident: b[8] == 0,
		flags:    binary.LittleEndian.Uint16(b[0x0C:]),
		id:       binary.LittleEndian.Uint16(b[0x0E:]),
	}
	nameLen := int(b[9])
	nameOff := int(binary.LittleEndian.Uint16(b[0x0A:]))
	if nameLen > 0 {
		if nameOff+2*nameLen > len(b) {
			return nil, corrupt("attribute %#x: name outside the attribute", a.typ)
		}
		a.name = decodeUTF16(b[nameOff : nameOff+2*nameLen])
	}
	if a.resident {
		if len(b) < 0x18 {
			return nil, corrupt("resident attribute %#x header truncated", a.typ)
		}
		vlen := int(binary.LittleEndian.Uint32(b[0x10:]))
		voff := int(binary.LittleEndian.Uint16(b[0x14:]))
		if voff > len(b) || vlen > len(b)-voff {
			return nil, corrupt("resident attribute %#x: value (%d at %d) outside the attribute", a.typ, vlen, voff)
		}
		a.value = b[voff : voff+vlen]
		a.dataSize, a.initSize, a.allocSize = int64(vlen), int64(vlen), int64(vlen)
		return a, nil
	}
	if len(b) < 0x40 {
		return nil, corrupt("non-resident attribute %#x header truncated", a.typ)
	}
	a.startVCN = int64(binary.LittleEndian.Uint64(b[0x10:]))
	a.lastVCN = int64(binary.LittleEndian.Uint64(b[0x18:]))
	runOff := int(binary.LittleEndian.Uint16(b[0x20:]))
	a.compUnit = b[0x22]
	a.allocSize = int64(binary.LittleEndian.Uint64(b[0x28:]))
	a.dataSize = int64(binary.LittleEndian.Uint64(b[0x30:]))
	a.initSize = int64(binary.LittleEndian.Uint64(b[0x38:]))
	if len(b) >= 0x48 && (a.compUnit != 0 || a.flags&(attrFlagCompressed|attrFlagSparse) != 0) {
		a.compSize = int64(binary.LittleEndian.Uint64(b[0x40:]))
	} else {
		a.compSize = a.allocSize
	}
	if a.startVCN < 0 || a.lastVCN < a.startVCN-1 || a.dataSize < 0 || a.allocSize < 0 || a.initSize < 0 ||
		a.compSize < 0 || a.compUnit > 16 {
		return nil, corrupt("non-resident attribute %#x: bad sizes or VCN range", a.typ)
	}
	if a.initSize > a.dataSize {
		a.initSize = a.dataSize
	}
	if runOff > len(b) {
		return nil, corrupt("non-resident attribute %#x: run list offset %d outside the attribute", a.typ, runOff)
	}
	runs, err := decodeRuns(b[runOff:], a.startVCN)
	if err != nil {
		return nil, err
	}
	a.runs = runs
	return a, nil
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
