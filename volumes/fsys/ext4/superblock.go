// Package ext4 reads ext2, ext3 and ext4 filesystems: block maps and extent trees, htree and inline
// directories, symlinks, device nodes and extended attributes. A journal that needs recovery is replayed
// in memory (see journal.go); the volume is never written.
package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
)

const (
	superblockOffset = 1024
	superblockSize   = 1024
	magic            = 0xEF53
	rootIno          = 2
)

// Feature bits this reader looks at (s_feature_compat / incompat / ro_compat).
const (
	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	compatSparseSuper2 = 0x200

	roCompatSparseSuper = 0x1
	roCompatHugeFile    = 0x8
	roCompatBigalloc    = 0x200
)

// incompatible bits we can read; anything else makes Open fail, as it makes the kernel refuse to mount.
const incompatKnown = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents | incompat64bit |
	incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed | incompatLargeDir | incompatInlineData |
	incompatCasefold | incompatEncrypt // encrypted entries themselves are refused one by one

// superblock holds the fields of the on-disk superblock this reader uses.
type superblock struct {
	inodesCount     uint32
	blocksCount     uint64
	freeBlocks      uint64
	freeInodes      uint32
	firstDataBlock  uint32
	blockSize       uint32
	blocksPerGroup  uint32
	inodesPerGroup  uint32
	creatorOS       uint32
	revLevel        uint32
	inodeSize       uint32
	compat          uint32
	incompat        uint32
	roCompat        uint32
	uuid            [16]byte
	label           string
	descSize        uint32
	firstMetaBG     uint32
	mkfsTime        uint32
	wantExtraIsize  uint16
	backupGroups    [2]uint32 // sparse_super2: the only groups besides 0 with a superblock copy
	groupCount      uint32
	descPerBlock    uint32
	addrPerBlock    uint32 // 32-bit block pointers per indirect block
	clusterSize     uint32
	logClusterShift uint32 // log2(cluster/block)
}

func parseSuperblock(b []byte) (*superblock, error) {
	if len(b) < superblockSize {
		return nil, fmt.Errorf("ext4: superblock truncated to %d bytes", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint16(b[56:]); m != magic {
		return nil, fmt.Errorf("ext4: bad superblock magic %#04x", m)
	}
	sb := &superblock{
		inodesCount:    le.Uint32(b[0:]),
		blocksCount:    uint64(le.Uint32(b[4:])),
		freeBlocks:     uint64(le.Uint32(b[12:])),
		freeInodes:     le.Uint32(b[16:]),
		firstDataBlock: le.Uint32(b[20:]),
		blocksPerGroup: le.Uint32(b[32:]),
		inodesPerGroup: le.Uint32(b[40:]),
		creatorOS:      le.Uint32(b[72:]),
		revLevel:       le.Uint32(b[76:]),
		inodeSize:      128,
	}
	logBlock := le.Uint32(b[24:])
	if logBlock > 6 { // 1 KiB << 6 = 64 KiB, the largest block size
		return nil, fmt.Errorf("ext4: block size 2^(10+%d) out of range", logBlock)
	}
	sb.blockSize = 1024 << logBlock
	if sb.revLevel >= 1 {
		sb.inodeSize = uint32(le.Uint16(b[88:]))
		sb.compat = le.Uint32(b[92:])
		sb.incompat = le.Uint32(b[96:])
		sb.roCompat = le.Uint32(b[100:])
		copy(sb.uuid[:], b[104:120])
		sb.label = strings.TrimRight(string(b[120:136]), "\x00")
		sb.firstMetaBG = le.Uint32(b[260:])
		sb.mkfsTime = le.Uint32(b[264:])
		sb.wantExtraIsize = le.Uint16(b[350:])
		sb.backupGroups = [2]uint32{le.Uint32(b[0x24C:]), le.Uint32(b[0x250:])}
	}
	sb.descSize = 32
	if sb.incompat&incompat64bit != 0 {
		sb.blocksCount |= uint64(le.Uint32(b[336:])) << 32
		sb.freeBlocks |= uint64(le.Uint32(b[344:])) << 32
		sb.descSize = uint32(le.Uint16(b[254:]))
		if sb.descSize < 64 || sb.descSize > 1024 || sb.descSize&(sb.descSize-1) != 0 {
			return nil, fmt.Errorf("ext4: group descriptor size %d invalid for a 64bit filesystem", sb.descSize)
		}
	}
	sb.clusterSize = sb.blockSize
	if sb.roCompat&roCompatBigalloc != 0 {
		logCluster := le.Uint32(b[28:])
		if logCluster < logBlock || logCluster-logBlock > 16 {
			return nil, fmt.Errorf("ext4: cluster size 2^(10+%d) invalid for 2^(10+%d)-byte blocks", logCluster, logBlock)
		}
		sb.logClusterShift = logCluster - logBlock
		sb.clusterSize = sb.blockSize << sb.logClusterShift
	}
	if err := sb.check(); err != nil {
		return nil, err
	}
	sb.groupCount = uint32((sb.blocksCount - uint64(sb.firstDataBlock) + uint64(sb.blocksPerGroup) - 1) / uint64(sb.blocksPerGroup))
	sb.descPerBlock = sb.blockSize / sb.descSize
	sb.addrPerBlock = sb.blockSize / 4
	return sb, nil
}

func (sb *superblock) check() error {
	if sb.incompat&incompatJournalDev != 0 {
		return errors.New("ext4: this is an external journal device, not a filesystem")
	}
	if bad := sb.incompat &^ incompatKnown; bad != 0 {
		return fmt.Errorf("ext4: unsupported incompatible features %#x%s", bad, featureNames(bad))
	}
	if sb.inodeSize < 128 || sb.inodeSize > sb.blockSize || sb.inodeSize&(sb.inodeSize-1) != 0 {
		return fmt.Errorf("ext4: inode size %d invalid", sb.inodeSize)
	}
	// A group's block bitmap has one bit per cluster.
	if sb.blocksPerGroup == 0 || uint64(sb.blocksPerGroup) > uint64(8*sb.blockSize)<<sb.logClusterShift {
		return fmt.Errorf("ext4: %d blocks per group invalid", sb.blocksPerGroup)
	}
	if sb.inodesPerGroup == 0 || sb.inodesPerGroup > 8*sb.blockSize {
		return fmt.Errorf("ext4: %d inodes per group invalid", sb.inodesPerGroup)
	}
	if sb.blocksCount <= uint64(sb.firstDataBlock) {
		return fmt.Errorf("ext4: block count %d not past the first data block %d", sb.blocksCount, sb.firstDataBlock)
	}
	if sb.firstDataBlock > 1 {
		return fmt.Errorf("ext4: first data block %d invalid", sb.firstDataBlock)
	}
	return nil
}

func featureNames(bits uint32) string {
	names := map[uint32]string{incompatCompression: "compression", incompatDirData: "dirdata", incompatEncrypt: "encrypt"}
	var out []string
	for bit, n := range names {
		if bits&bit != 0 {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

func (sb *superblock) has(incompat uint32) bool { return sb.incompat&incompat != 0 }

// groupHasSuper reports whether a block group holds a superblock backup (sparse_super: 0, 1, powers
// of 3, 5, 7; sparse_super2: 0 and the two groups the superblock names).
func (sb *superblock) groupHasSuper(g uint32) bool {
	if g == 0 {
		return true
	}
	if sb.compat&compatSparseSuper2 != 0 {
		return g == sb.backupGroups[0] || g == sb.backupGroups[1]
	}
	if g <= 1 || sb.roCompat&roCompatSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	for _, base := range []uint32{3, 5, 7} {
		n := base
		for n < g {
			n *= base
		}
		if n == g {
			return true
		}
	}
	return false
}

func (sb *superblock) uuidString() string {
	u := sb.uuid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
