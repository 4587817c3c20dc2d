// Package btrfs reads Btrfs volumes as an fsys.FS, read-only: the superblock, the system chunk array
// and chunk tree (single, DUP, RAID 0/1/1C3/1C4/10/5/6 mappings; degraded RAID5/6 rebuilt from
// parity), the root tree and the FS tree of every subvolume, shown from the top level as
// `mount -o subvolid=5` shows it, each subvolume and snapshot a directory. Files read inline, regular
// and preallocated extents, holes and shared extents, with zlib, LZO and zstd compression; xattrs,
// symlinks and hard links as stored. Checksums of metadata and file data are verified (crc32c,
// xxhash64, sha256 and blake2b); a block or sector that fails is read from its other copies. Inode
// numbers are the stored ones in the top-level subvolume and are made unique for the others.
package btrfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrCorrupt marks structures that contradict each other or the volume's bounds.
var ErrCorrupt = errors.New("corrupt Btrfs file system")

// ErrUnsupported marks content this reader does not handle. It wraps errors.ErrUnsupported, which a
// FUSE layer reports as EOPNOTSUPP (EIO stays for damage).
var ErrUnsupported error = unsupported{}

type unsupported struct{}

func (unsupported) Error() string { return "unsupported Btrfs feature" }
func (unsupported) Unwrap() error { return errors.ErrUnsupported }

const (
	superOffset = 0x10000
	superSize   = 4096
	magic       = "_BHRfS_M"

	csumCRC32C = 0
	csumXXHash = 1
	csumSHA256 = 2
	csumBlake2 = 3
)

type superblock struct {
	fsid          [16]byte
	metadataUUID  [16]byte
	generation    uint64
	root          uint64
	chunkRoot     uint64
	totalBytes    uint64
	bytesUsed     uint64
	numDevices    uint64
	sectorSize    uint32
	nodeSize      uint32
	csumType      uint16
	rootLevel     uint8
	chunkLevel    uint8
	incompat      uint64
	devid         uint64 // this device's id (dev_item)
	label         string
	sysChunkArray []byte
}

const incompatMetadataUUID = 1 << 10

func readSuper(r io.ReaderAt, size int64) (*superblock, error) {
	if size < superOffset+superSize {
		return nil, fmt.Errorf("%w: %d bytes is too small for a superblock", ErrCorrupt, size)
	}
	b := make([]byte, superSize)
	if _, err := r.ReadAt(b, superOffset); err != nil {
		return nil, fmt.Errorf("reading the superblock: %w", err)
	}
	if string(b[0x40:0x48]) != magic {
		return nil, fmt.Errorf("%w: no Btrfs magic at 64 KiB", ErrCorrupt)
	}
	le64 := func(o int) uint64 { return binary.LittleEndian.Uint64(b[o:]) }
	sb := &superblock{generation: le64(0x48), root: le64(0x50), chunkRoot: le64(0x58), totalBytes: le64(0x70),
		bytesUsed: le64(0x78), numDevices: le64(0x88), sectorSize: binary.LittleEndian.Uint32(b[0x90:]),
		nodeSize: binary.LittleEndian.Uint32(b[0x94:]), incompat: le64(0xbc),
		csumType: binary.LittleEndian.Uint16(b[0xc4:]), rootLevel: b[0xc6], chunkLevel: b[0xc7], devid: le64(0xc9)}
	copy(sb.fsid[:], b[0x20:0x30])
	sb.metadataUUID = sb.fsid
	if sb.incompat&incompatMetadataUUID != 0 {
		copy(sb.metadataUUID[:], b[0x23b:0x24b])
	}
	if i := bytes.IndexByte(b[0x12b:0x22b], 0); i >= 0 {
		sb.label = string(b[0x12b : 0x12b+i])
	}
	if err := verifyCsum(sb.csumType, b[:superSize]); err != nil {
		return nil, fmt.Errorf("superblock: %w", err)
	}
	if sb.sectorSize < 512 || sb.sectorSize > 65536 || sb.sectorSize&(sb.sectorSize-1) != 0 ||
		sb.nodeSize < sb.sectorSize || sb.nodeSize > 65536 || sb.nodeSize&(sb.nodeSize-1) != 0 {
		return nil, fmt.Errorf("%w: sector size %d, node size %d", ErrCorrupt, sb.sectorSize, sb.nodeSize)
	}
	if sb.rootLevel >= maxLevel || sb.chunkLevel >= maxLevel {
		return nil, fmt.Errorf("%w: tree levels %d and %d", ErrCorrupt, sb.rootLevel, sb.chunkLevel)
	}
	n := binary.LittleEndian.Uint32(b[0xa0:])
	if n > 2048 {
		return nil, fmt.Errorf("%w: system chunk array of %d bytes", ErrCorrupt, n)
	}
	sb.sysChunkArray = append([]byte(nil), b[0x32b:0x32b+n]...)
	return sb, nil
}

// DeviceCount is the number of devices the filesystem on r says it has (its superblock's
// num_devices), for a caller that gathers them.
func DeviceCount(r io.ReaderAt, size int64) (uint64, error) {
	sb, err := readSuper(r, size)
	if err != nil {
		return 0, err
	}
	return sb.numDevices, nil
}
