package xfs

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var zeroCRC [4]byte

// crcOK checks a v5 metadata checksum: CRC32C of the buffer with its 4-byte CRC field (at off, stored
// little-endian) taken as zero.
func crcOK(b []byte, off int) bool {
	if off+4 > len(b) {
		return false
	}
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, zeroCRC[:])
	c = crc32.Update(c, castagnoli, b[off+4:])
	return c == uint32(b[off])|uint32(b[off+1])<<8|uint32(b[off+2])<<16|uint32(b[off+3])<<24
}

// setCRC stores the CRC32C of b, its CRC field at off taken as zero, little-endian at off: what a
// v5 write verifier does.
func setCRC(b []byte, off int) {
	binary.LittleEndian.PutUint32(b[off:], 0)
	binary.LittleEndian.PutUint32(b[off:], crc32.Checksum(b, castagnoli))
}
