package ext4

import (
	"encoding/binary"
	"fmt"
)

// groupDesc is the part of a block group descriptor needed to find inodes.
type groupDesc struct {
	inodeTable uint64
	flags      uint16
}

// parseGroupDesc decodes one 32- or 64-byte descriptor.
func parseGroupDesc(b []byte, is64 bool) groupDesc {
	le := binary.LittleEndian
	g := groupDesc{inodeTable: uint64(le.Uint32(b[8:])), flags: le.Uint16(b[18:])}
	if is64 && len(b) >= 64 {
		g.inodeTable |= uint64(le.Uint32(b[40:])) << 32
	}
	return g
}

// descBlock returns the block holding descriptor block nr (one block of descPerBlock descriptors):
// right after the superblock, or with meta_bg in the first, second and last group of each meta group.
func (sb *superblock) descBlock(nr uint32) uint64 {
	if !sb.has(incompatMetaBG) || nr < sb.firstMetaBG {
		// Right after the block holding the superblock: block 1 with 1 KiB blocks (even when bigalloc
		// makes the first data block 0), else block 0.
		sbBlock := uint64(superblockOffset / sb.blockSize)
		return sbBlock + uint64(nr) + 1
	}
	g := uint64(sb.descPerBlock) * uint64(nr)
	var hasSuper uint64
	if sb.groupHasSuper(uint32(g)) {
		hasSuper = 1
	}
	if sb.blockSize == 1024 && nr == 0 && sb.firstDataBlock == 0 {
		hasSuper++
	}
	return g*uint64(sb.blocksPerGroup) + uint64(sb.firstDataBlock) + hasSuper
}

// readGroups loads every group descriptor; each descriptor block is checked to lie inside the volume.
func (f *FS) readGroups() error {
	sb := f.sb
	is64 := sb.has(incompat64bit)
	if uint64(sb.groupCount)*uint64(sb.descSize) > uint64(f.size) {
		return fmt.Errorf("ext4: %d group descriptors cannot fit in a %d-byte volume", sb.groupCount, f.size)
	}
	f.groups = make([]groupDesc, sb.groupCount)
	buf := make([]byte, sb.blockSize)
	nblocks := (sb.groupCount + sb.descPerBlock - 1) / sb.descPerBlock
	for nr := uint32(0); nr < nblocks; nr++ {
		blk := sb.descBlock(nr)
		if err := f.readBlock(buf, blk); err != nil {
			return fmt.Errorf("ext4: group descriptor block %d: %w", nr, err)
		}
		for i := uint32(0); i < sb.descPerBlock; i++ {
			g := nr*sb.descPerBlock + i
			if g >= sb.groupCount {
				break
			}
			f.groups[g] = parseGroupDesc(buf[i*sb.descSize:(i+1)*sb.descSize], is64)
		}
	}
	return nil
}
