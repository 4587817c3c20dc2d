package ldm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// DB is the disk group database from one disk.
type DB struct {
	GroupName  string
	GroupGUID  string
	Committed  uint64
	Volumes    []*VolumeRec
	Components []*ComponentRec
	Partitions []*PartitionRec
	Disks      []*DiskRec
}

// VolumeRec is a volume VBLK.
type VolumeRec struct {
	ID       uint32
	Name     string
	Type     string // "gen" or "raid5"
	IntType  byte   // 3 gen, 4 raid5
	NComps   uint32
	Size     uint64 // sectors
	PartType byte
	GUID     [16]byte
	Hint     string
}

// Component types.
const (
	CompStriped = 1
	CompSpanned = 2
	CompRAID5   = 3
)

// ComponentRec is a component VBLK.
type ComponentRec struct {
	ID       uint32
	Name     string
	Type     byte
	NParts   uint32
	Parent   uint32 // volume id
	Chunk    uint64 // sectors
	NColumns uint32
}

// PartitionRec is a partition VBLK: an extent on one disk.
type PartitionRec struct {
	ID        uint32
	Name      string
	Start     uint64 // sectors from the disk's data start
	VolOffset uint64 // sectors
	Size      uint64 // sectors
	Parent    uint32 // component id
	DiskID    uint32
	Index     uint32
}

// DiskRec is a disk VBLK.
type DiskRec struct {
	ID   uint32
	Name string
	GUID string
}

// ParseVMDB parses the VMDB header at the start of b and the VBLK records after it.
func ParseVMDB(b []byte) (*DB, error) {
	if len(b) < 0x95 || string(b[:4]) != "VMDB" {
		return nil, errors.New("no VMDB")
	}
	size := int(binary.BigEndian.Uint32(b[0x08:]))
	first := int(binary.BigEndian.Uint32(b[0x0C:]))
	if size < 32 || size > 64<<10 || first < 0x95 || first > len(b) {
		return nil, fmt.Errorf("VMDB: VBLK size %d, first at %d", size, first)
	}
	db := &DB{GroupName: text(b[0x16:0x35]), GroupGUID: text(b[0x35:0x75]), Committed: binary.BigEndian.Uint64(b[0x75:])}
	type frag struct {
		total uint16
		parts map[uint16][]byte
	}
	frags := map[uint32]*frag{}
	var fragOrder []uint32
	var records [][]byte
	for off := first; off+size <= len(b); off += size {
		v := b[off : off+size]
		if string(v[:4]) != "VBLK" {
			break
		}
		id := binary.BigEndian.Uint32(v[8:])
		entry, total := binary.BigEndian.Uint16(v[0x0C:]), binary.BigEndian.Uint16(v[0x0E:])
		switch {
		case total == 0:
			continue
		case entry >= total:
			return nil, fmt.Errorf("VBLK at %d: entry %d of %d", off, entry, total)
		case total == 1:
			records = append(records, v[16:])
		default:
			f := frags[id]
			if f == nil {
				f = &frag{total: total, parts: map[uint16][]byte{}}
				frags[id] = f
				fragOrder = append(fragOrder, id)
			}
			if f.total != total {
				return nil, fmt.Errorf("VBLK record %d: fragments disagree on their count", id)
			}
			f.parts[entry] = v[16:]
		}
	}
	for _, id := range fragOrder {
		f := frags[id]
		if len(f.parts) != int(f.total) {
			return nil, fmt.Errorf("VBLK record %d: %d of %d fragments found", id, len(f.parts), f.total)
		}
		var rec []byte
		for i := uint16(0); i < f.total; i++ {
			rec = append(rec, f.parts[i]...)
		}
		records = append(records, rec)
	}
	for _, rec := range records {
		if err := db.parseRecord(rec); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(db.Volumes, func(i, j int) bool { return db.Volumes[i].ID < db.Volumes[j].ID })
	return db, nil
}

// cursor reads LDM's variable-length fields, failing (not panicking) past the end.
type cursor struct {
	b   []byte
	pos int
	err error
}

func (c *cursor) bytes(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || c.pos+n > len(c.b) {
		c.err = fmt.Errorf("record ends at %d, field needs %d bytes from %d", len(c.b), n, c.pos)
		return nil
	}
	c.pos += n
	return c.b[c.pos-n : c.pos]
}

func (c *cursor) skip(n int) { c.bytes(n) }

func (c *cursor) u8() byte {
	if b := c.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (c *cursor) u64() uint64 {
	if b := c.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// varint is a length byte followed by that many big-endian bytes.
func (c *cursor) varint(max int) uint64 {
	n := int(c.u8())
	if c.err == nil && n > max {
		c.err = fmt.Errorf("%d-byte integer where at most %d fit", n, max)
		return 0
	}
	var v uint64
	for _, x := range c.bytes(n) {
		v = v<<8 | uint64(x)
	}
	return v
}

func (c *cursor) varstr() string { return string(c.bytes(int(c.u8()))) }

func (db *DB) parseRecord(rec []byte) error {
	if len(rec) < 8 {
		return errors.New("VBLK record too short")
	}
	flags := rec[2]
	kind, rev := rec[3]&0x0F, rec[3]>>4
	c := &cursor{b: rec, pos: 8}
	switch kind {
	case 0:
		return nil
	case 1:
		if rev != 5 {
			return fmt.Errorf("volume VBLK revision %d not supported", rev)
		}
		v := &VolumeRec{ID: uint32(c.varint(4)), Name: c.varstr(), Type: c.varstr()}
		c.varstr() // unknown
		c.skip(14) // state
		v.IntType = c.u8()
		c.skip(1 + 1 + 3) // unknown, volume number, zeros
		c.u8()            // volume flags
		v.NComps = uint32(c.varint(4))
		c.skip(16) // commit id, id
		v.Size = c.varint(8)
		c.skip(4)
		v.PartType = c.u8()
		copy(v.GUID[:], c.bytes(16))
		if flags&0x08 != 0 {
			c.varstr()
		}
		if flags&0x20 != 0 {
			c.varstr()
		}
		if flags&0x80 != 0 {
			c.varint(8)
		}
		if flags&0x02 != 0 {
			v.Hint = c.varstr()
		}
		db.Volumes = append(db.Volumes, v)
	case 2:
		if rev != 3 {
			return fmt.Errorf("component VBLK revision %d not supported", rev)
		}
		p := &ComponentRec{ID: uint32(c.varint(4)), Name: c.varstr()}
		c.varstr() // state
		p.Type = c.u8()
		c.skip(4)
		p.NParts = uint32(c.varint(4))
		c.skip(16) // log commit id, zeros
		p.Parent = uint32(c.varint(4))
		c.skip(1)
		if flags&0x10 != 0 {
			p.Chunk = c.varint(8)
			p.NColumns = uint32(c.varint(4))
		}
		db.Components = append(db.Components, p)
	case 3:
		if rev != 3 {
			return fmt.Errorf("partition VBLK revision %d not supported", rev)
		}
		p := &PartitionRec{ID: uint32(c.varint(4)), Name: c.varstr()}
		c.skip(4 + 8) // zeros, commit id
		p.Start = c.u64()
		p.VolOffset = c.u64()
		p.Size = c.varint(8)
		p.Parent = uint32(c.varint(4))
		p.DiskID = uint32(c.varint(4))
		if flags&0x08 != 0 {
			p.Index = uint32(c.varint(4))
		}
		db.Partitions = append(db.Partitions, p)
	case 4:
		d := &DiskRec{ID: uint32(c.varint(4)), Name: c.varstr()}
		switch rev {
		case 3:
			d.GUID = c.varstr()
		case 4:
			d.GUID = formatGUID(c.bytes(16))
		default:
			return fmt.Errorf("disk VBLK revision %d not supported", rev)
		}
		db.Disks = append(db.Disks, d)
	case 5:
		c.varint(4)
		if name := c.varstr(); c.err == nil {
			db.GroupName = name
		}
	default:
		return fmt.Errorf("unknown VBLK type %d", kind)
	}
	if c.err != nil {
		return fmt.Errorf("VBLK type %d: %w", kind, c.err)
	}
	return nil
}

// formatGUID prints 16 raw bytes (stored in big-endian order by LDM) as a lower-case GUID.
func formatGUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
