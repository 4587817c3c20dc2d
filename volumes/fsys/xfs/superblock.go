package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

var be = binary.BigEndian

// ErrCorrupt marks on-disk structures that fail a sanity or checksum test.
var ErrCorrupt = errors.New("xfs: corrupt")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// Feature bits that change how we read the volume.
const (
	versionMask       = 0x000f
	features2FType    = 0x200 // v4: directory entries carry the file type
	incompatFType     = 0x1
	incompatSpinodes  = 0x2
	incompatMetaUUID  = 0x4
	incompatBigtime   = 0x8
	incompatNeedsRepr = 0x10
	incompatNrext64   = 0x20
	incompatExchRange = 0x40
	incompatParent    = 0x80
	incompatKnown     = incompatFType | incompatSpinodes | incompatMetaUUID | incompatBigtime |
		incompatNeedsRepr | incompatNrext64 | incompatExchRange | incompatParent
	sbCRCOffset = 224
	sbMinSize   = 264 // through sb_meta_uuid
)

// superblock holds the geometry of the volume, decoded from AG 0's primary superblock.
type superblock struct {
	blockSize  uint32
	blockLog   uint
	dblocks    uint64
	uuid       [16]byte
	metaUUID   [16]byte // the UUID stamped in v5 metadata: sb_meta_uuid when the feature says so
	logStart   uint64
	rootIno    uint64
	agBlocks   uint32
	agCount    uint32
	logBlocks  uint32
	version    int
	sectSize   uint16
	inodeSize  uint32
	inodeLog   uint
	inopbLog   uint
	agBlkLog   uint
	label      string
	imaxPct    uint8
	icount     uint64
	ifree      uint64
	fdblocks   uint64
	dirBlkLog  uint
	incompat   uint32
	hasFType   bool
	crc        bool // v5: self-describing metadata with CRC32C
	dirBlkSize uint32
}

func parseSuperblock(b []byte) (*superblock, error) {
	if len(b) < sbMinSize {
		return nil, corruptf("superblock: %d bytes, need %d", len(b), sbMinSize)
	}
	if string(b[0:4]) != "XFSB" {
		return nil, fmt.Errorf("xfs: no XFSB magic at volume start")
	}
	sb := &superblock{
		blockSize: be.Uint32(b[4:]),
		dblocks:   be.Uint64(b[8:]),
		logStart:  be.Uint64(b[48:]),
		rootIno:   be.Uint64(b[56:]),
		agBlocks:  be.Uint32(b[84:]),
		agCount:   be.Uint32(b[88:]),
		logBlocks: be.Uint32(b[96:]),
		version:   int(be.Uint16(b[100:]) & versionMask),
		sectSize:  be.Uint16(b[102:]),
		inodeSize: uint32(be.Uint16(b[104:])),
		blockLog:  uint(b[120]),
		inodeLog:  uint(b[122]),
		inopbLog:  uint(b[123]),
		agBlkLog:  uint(b[124]),
		imaxPct:   b[127],
		icount:    be.Uint64(b[128:]),
		ifree:     be.Uint64(b[136:]),
		fdblocks:  be.Uint64(b[144:]),
		dirBlkLog: uint(b[192]),
	}
	copy(sb.uuid[:], b[32:48])
	sb.metaUUID = sb.uuid
	sb.label = strings.TrimRight(string(b[108:120]), "\x00")
	switch sb.version {
	case 4:
		features2 := be.Uint32(b[200:])
		sb.hasFType = features2&features2FType != 0
	case 5:
		sb.crc = true
		sb.incompat = be.Uint32(b[216:])
		if unknown := sb.incompat &^ incompatKnown; unknown != 0 {
			return nil, fmt.Errorf("xfs: unsupported incompatible features %#x", unknown)
		}
		sb.hasFType = sb.incompat&incompatFType != 0
		if sb.incompat&incompatMetaUUID != 0 {
			copy(sb.metaUUID[:], b[248:264])
		}
	default:
		return nil, fmt.Errorf("xfs: unsupported superblock version %d", sb.version)
	}
	if err := sb.check(); err != nil {
		return nil, err
	}
	if sb.crc && !crcOK(b[:sb.sectSize], sbCRCOffset) {
		return nil, corruptf("superblock checksum mismatch")
	}
	sb.dirBlkSize = sb.blockSize << sb.dirBlkLog
	return sb, nil
}

func (sb *superblock) check() error {
	switch {
	case sb.blockLog < 9 || sb.blockLog > 16 || sb.blockSize != 1<<sb.blockLog:
		return corruptf("superblock: block size %d / log %d", sb.blockSize, sb.blockLog)
	case sb.sectSize < 512 || sb.sectSize&(sb.sectSize-1) != 0 || uint32(sb.sectSize) > sb.blockSize:
		return corruptf("superblock: sector size %d", sb.sectSize)
	case sb.inodeLog < 8 || sb.inodeLog > 11 || sb.inodeSize != 1<<sb.inodeLog || sb.inodeSize > sb.blockSize:
		return corruptf("superblock: inode size %d / log %d", sb.inodeSize, sb.inodeLog)
	case sb.inopbLog != sb.blockLog-sb.inodeLog:
		return corruptf("superblock: inodes-per-block log %d", sb.inopbLog)
	case sb.agCount == 0 || sb.agBlocks < 16:
		return corruptf("superblock: %d AGs of %d blocks", sb.agCount, sb.agBlocks)
	case sb.agBlkLog > 31 || uint64(sb.agBlocks) > 1<<sb.agBlkLog || (sb.agBlkLog > 0 && uint64(sb.agBlocks) <= 1<<(sb.agBlkLog-1)):
		return corruptf("superblock: AG block log %d for %d blocks", sb.agBlkLog, sb.agBlocks)
	case sb.dblocks == 0 || sb.dblocks > uint64(sb.agCount)*uint64(sb.agBlocks):
		return corruptf("superblock: %d data blocks in %d AGs of %d", sb.dblocks, sb.agCount, sb.agBlocks)
	case sb.dirBlkLog > 16-sb.blockLog:
		return corruptf("superblock: directory block log %d", sb.dirBlkLog)
	case sb.version == 5 && sb.inodeSize < 512:
		return corruptf("superblock: v5 inode size %d", sb.inodeSize)
	}
	return nil
}

// fsbToByte turns a filesystem block number (AG number in the high bits) into a volume byte offset.
func (sb *superblock) fsbToByte(fsb uint64) (int64, error) {
	agno := fsb >> sb.agBlkLog
	agbno := fsb & (1<<sb.agBlkLog - 1)
	if agno >= uint64(sb.agCount) || agbno >= uint64(sb.agBlocks) {
		return 0, corruptf("block %#x outside AG geometry", fsb)
	}
	return int64((agno*uint64(sb.agBlocks) + agbno) << sb.blockLog), nil
}

// checkRun verifies that count blocks from fsb stay inside one AG (extents never cross AGs).
func (sb *superblock) checkRun(fsb, count uint64) error {
	agno := fsb >> sb.agBlkLog
	agbno := fsb & (1<<sb.agBlkLog - 1)
	if agno >= uint64(sb.agCount) || count == 0 || agbno+count > uint64(sb.agBlocks) {
		return corruptf("extent of %d blocks at %#x outside AG geometry", count, fsb)
	}
	return nil
}

// inodeByte locates an inode number: AG number, block in AG and slot in block.
func (sb *superblock) inodeByte(ino uint64) (int64, error) {
	agno := ino >> (sb.agBlkLog + sb.inopbLog)
	agbno := (ino >> sb.inopbLog) & (1<<sb.agBlkLog - 1)
	slot := ino & (1<<sb.inopbLog - 1)
	if agno >= uint64(sb.agCount) || agbno >= uint64(sb.agBlocks) || ino>>(sb.agBlkLog+sb.inopbLog+32) != 0 {
		return 0, fmt.Errorf("%w: inode number %d outside AG geometry", ErrCorrupt, ino)
	}
	return int64((agno*uint64(sb.agBlocks)+agbno)<<sb.blockLog + slot<<sb.inodeLog), nil
}

func (sb *superblock) uuidString() string {
	u := sb.uuid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
