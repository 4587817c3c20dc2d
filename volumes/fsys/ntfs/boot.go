package ntfs

import (
	"encoding/binary"
	"math/bits"
)

// bootSector holds the fields of the NTFS boot sector (BPB) that the reader needs.
type bootSector struct {
	sectorSize      uint32
	clusterSize     uint32
	totalSectors    uint64
	mftCluster      uint64
	mftMirrCluster  uint64
	recordSize      uint32 // MFT record size in bytes
	indexRecordSize uint32 // $I30 index block size in bytes
	serial          uint64
}

// sizeFromCode decodes the "clusters per record" bytes: positive is a cluster count, negative n means
// 2^-n bytes.
func sizeFromCode(code int8, clusterSize uint32) (uint32, bool) {
	if code > 0 {
		v := uint64(code) * uint64(clusterSize)
		return uint32(v), v <= 1<<16
	}
	shift := -int(code)
	if shift < 9 || shift > 16 {
		return 0, false
	}
	return 1 << shift, true
}

func parseBoot(b []byte) (bootSector, error) {
	var bs bootSector
	if len(b) < 512 {
		return bs, corrupt("boot sector truncated (%d bytes)", len(b))
	}
	if string(b[3:11]) != "NTFS    " {
		return bs, corrupt("boot sector has no NTFS signature")
	}
	bs.sectorSize = uint32(binary.LittleEndian.Uint16(b[0x0B:]))
	if bs.sectorSize < 256 || bs.sectorSize > 4096 || bits.OnesCount32(bs.sectorSize) != 1 {
		return bs, corrupt("bad bytes per sector %d", bs.sectorSize)
	}
	spc := uint32(b[0x0D])
	if spc > 0x80 {
		// Large clusters are stored as a negative power of two.
		shift := 256 - spc
		if shift > 24 {
			return bs, corrupt("bad sectors per cluster code %#x", b[0x0D])
		}
		spc = 1 << shift
	}
	if spc == 0 || bits.OnesCount32(spc) != 1 {
		return bs, corrupt("bad sectors per cluster %d", spc)
	}
	bs.clusterSize = spc * bs.sectorSize
	if bs.clusterSize > 2<<20 {
		return bs, corrupt("cluster size %d too large", bs.clusterSize)
	}
	bs.totalSectors = binary.LittleEndian.Uint64(b[0x28:])
	bs.mftCluster = binary.LittleEndian.Uint64(b[0x30:])
	bs.mftMirrCluster = binary.LittleEndian.Uint64(b[0x38:])
	var ok bool
	if bs.recordSize, ok = sizeFromCode(int8(b[0x40]), bs.clusterSize); !ok || bs.recordSize < 512 || bits.OnesCount32(bs.recordSize) != 1 {
		return bs, corrupt("bad MFT record size code %#x", b[0x40])
	}
	if bs.indexRecordSize, ok = sizeFromCode(int8(b[0x44]), bs.clusterSize); !ok || bs.indexRecordSize < 512 || bits.OnesCount32(bs.indexRecordSize) != 1 {
		return bs, corrupt("bad index record size code %#x", b[0x44])
	}
	bs.serial = binary.LittleEndian.Uint64(b[0x48:])
	if bs.totalSectors == 0 || bs.totalSectors > 1<<48 {
		return bs, corrupt("bad total sector count %d", bs.totalSectors)
	}
	if bs.mftCluster >= bs.totalSectors/uint64(spc) {
		return bs, corrupt("MFT cluster %d beyond the volume", bs.mftCluster)
	}
	return bs, nil
}
