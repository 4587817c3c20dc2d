// Package regftest writes registry hives by hand from the format's facts, for tests: the minimal hive
// hivex needs to start from, and structures hivex never writes (li and ri lists, big data) or hostile
// ones.
package regftest

import "encoding/binary"

const (
	baseBlockSize = 4096
	hbinHeader    = 32
	pageSize      = 4096
)

// Builder lays out a hive by hand from the format's facts: a base block, then one hive bin holding the
// cells added, then a free cell up to the bin's end. Tests use it for the minimal hive hivex starts
// from and for the structures hivex never writes (li and ri lists, big data) or hostile ones.
type Builder struct {
	Minor uint32
	Cells []byte // the hive bin's content after its 32-byte header
}

// NewBuilder starts a version 1.5 hive.
func NewBuilder() *Builder { return &Builder{Minor: 5} }

// Add appends a used cell with data and returns its hive offset.
func (b *Builder) Add(data []byte) uint32 {
	off := uint32(hbinHeader + len(b.Cells))
	size := (4 + len(data) + 7) &^ 7
	c := make([]byte, size)
	binary.LittleEndian.PutUint32(c, uint32(-int32(size)))
	copy(c[4:], data)
	b.Cells = append(b.Cells, c...)
	return off
}

// Set overwrites bytes of an added cell's data (to patch offsets known only later).
func (b *Builder) Set(cell uint32, at int, v uint32) {
	binary.LittleEndian.PutUint32(b.Cells[int(cell)-hbinHeader+4+at:], v)
}

// NK returns the data of a key cell named name (Latin-1) with no subkeys or values.
func NK(name string, flags uint16, parent, sk uint32) []byte {
	c := make([]byte, 0x4C+len(name))
	copy(c, "nk")
	binary.LittleEndian.PutUint16(c[2:], flags|0x20)
	binary.LittleEndian.PutUint64(c[4:], 133000000000000000)
	binary.LittleEndian.PutUint32(c[0x10:], parent)
	for _, at := range []int{0x1C, 0x20, 0x28, 0x30} {
		binary.LittleEndian.PutUint32(c[at:], 0xFFFFFFFF)
	}
	binary.LittleEndian.PutUint32(c[0x2C:], sk)
	binary.LittleEndian.PutUint16(c[0x48:], uint16(len(name)))
	copy(c[0x4C:], name)
	return c
}

// SK is a security cell linked to itself with a minimal self-relative descriptor.
func SK(self uint32) []byte {
	desc := []byte{1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	c := make([]byte, 0x14+len(desc))
	copy(c, "sk")
	binary.LittleEndian.PutUint32(c[4:], self)
	binary.LittleEndian.PutUint32(c[8:], self)
	binary.LittleEndian.PutUint32(c[0x0C:], 1)
	binary.LittleEndian.PutUint32(c[0x10:], uint32(len(desc)))
	copy(c[0x14:], desc)
	return c
}

// Bytes finishes the hive: the bin is padded to whole pages with a free cell, and the base block,
// which names root as the root key, gets its checksum.
func (b *Builder) Bytes(root uint32) []byte {
	binSize := (hbinHeader + len(b.Cells) + 8 + pageSize - 1) &^ (pageSize - 1)
	bin := make([]byte, binSize)
	copy(bin, "hbin")
	binary.LittleEndian.PutUint32(bin[8:], uint32(binSize))
	copy(bin[hbinHeader:], b.Cells)
	free := bin[hbinHeader+len(b.Cells):]
	binary.LittleEndian.PutUint32(free, uint32(len(free)))
	base := make([]byte, baseBlockSize)
	copy(base, "regf")
	binary.LittleEndian.PutUint32(base[4:], 1)
	binary.LittleEndian.PutUint32(base[8:], 1)
	binary.LittleEndian.PutUint32(base[0x14:], 1)
	binary.LittleEndian.PutUint32(base[0x18:], b.Minor)
	binary.LittleEndian.PutUint32(base[0x20:], 1)
	binary.LittleEndian.PutUint32(base[0x24:], root)
	binary.LittleEndian.PutUint32(base[0x28:], uint32(binSize))
	binary.LittleEndian.PutUint32(base[0x2C:], 1)
	FixChecksum(base)
	return append(base, bin...)
}

func FixChecksum(base []byte) {
	var sum uint32
	for i := 0; i < 0x1FC; i += 4 {
		sum ^= binary.LittleEndian.Uint32(base[i:])
	}
	binary.LittleEndian.PutUint32(base[0x1FC:], sum)
}

// MinimalHive is an empty hive: a root key named name and its security cell.
func MinimalHive(name string) []byte {
	b := NewBuilder()
	root := b.Add(NK(name, 0x04|0x08, 0, 0))
	sk := b.Add(SK(0))
	b.Set(sk, 4, sk)
	b.Set(sk, 8, sk)
	b.Set(root, 0x2C, sk)
	return b.Bytes(root)
}
