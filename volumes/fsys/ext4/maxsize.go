package ext4

import "math"

// The largest file an inode can describe, as the kernel computes it (ext4_max_size and
// ext4_max_bitmap_size): an inode claiming more is damage, refused with "bad i_size" rather than
// served as an endless file.

// maxFileSize is the limit for an inode with (extents) or without an extent tree.
func (sb *superblock) maxFileSize(extents bool) uint64 {
	bits := uint(9)
	for uint32(1)<<bits < sb.blockSize {
		bits++
	}
	huge := sb.roCompat&roCompatHugeFile != 0
	if extents {
		return maxExtentSize(bits, huge)
	}
	return maxBlockMapSize(bits, huge)
}

// maxExtentSize: an extent starts at a 32-bit logical block, less one block so that the extent
// holding the last block can be described; without huge_file, i_blocks (32 bits of 512-byte sectors)
// bounds the file too.
func maxExtentSize(bits uint, huge bool) uint64 {
	res := uint64(1<<32-1) << bits
	if !huge {
		res = min(res, uint64(1<<32-1)>>(bits-9)<<bits)
	}
	return min(res, math.MaxInt64)
}

// maxBlockMapSize: twelve direct blocks, then one, two and three levels of indirect blocks of
// bits-2 pointers each, unless i_blocks (which counts the indirect blocks as well) runs out first.
func maxBlockMapSize(bits uint, huge bool) uint64 {
	ppb := uint64(1) << (bits - 2)
	limit := uint64(1<<32-1) >> (bits - 9)
	if huge {
		limit = 1<<48 - 1
	}
	blocks := 12 + ppb + ppb*ppb + ppb*ppb*ppb
	meta := 1 + (1 + ppb) + (1 + ppb + ppb*ppb)
	if blocks+meta > limit {
		// i_blocks is the bound: take from it the indirect blocks needed to address that many.
		rest := limit - 12 - ppb
		meta = 1
		if rest < ppb*ppb {
			meta += 1 + (rest+ppb-1)/ppb
		} else {
			rest -= ppb * ppb
			meta += 1 + ppb + 1 + (rest+ppb-1)/ppb + (rest+ppb*ppb-1)/(ppb*ppb)
		}
		blocks = limit - meta
	}
	return min(blocks<<bits, math.MaxInt64)
}
