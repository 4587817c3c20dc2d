package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
)

// Btrfs layout facts the plan needs (the image of make.sh: one device, single profile, 4 KiB nodes,
// logical addresses equal to device offsets, which the plan checks block by block).
const (
	btrfsSuper      = 0x10000
	btrfsNode       = 4096
	btrfsHeader     = 0x65
	btrfsItem       = 25
	btrfsPtr        = 33
	btrfsInodeItem  = 1
	btrfsDirItem    = 84
	btrfsDirIndex   = 96
	btrfsExtentData = 108
	btrfsRootItem   = 132
	btrfsChunkItem  = 228
)

// btrfsItemAt is one leaf item: its block, key and where its data sits in the image.
type btrfsItemAt struct {
	block    int64
	objectid uint64
	typ      uint8
	offset   uint64
	data     int64
	size     int64
}

// btrfsImage indexes the tree blocks of a Btrfs image by their address.
type btrfsImage struct {
	base   *Image
	leaves map[int64][]btrfsItemAt
	nodes  map[int64]int // internal nodes: their item counts
	level  map[int64]uint8
}

func fixBtrfsBlock(im *Image, blk int64) {
	im.PutLE(blk, 4, uint64(crc32.Checksum(im.Bytes(blk+32, btrfsNode-32), castagnoli)))
}

func fixBtrfsSuper(im *Image) {
	im.PutLE(btrfsSuper, 4, uint64(crc32.Checksum(im.Bytes(btrfsSuper+32, 4096-32), castagnoli)))
}

func scanBtrfs(base *Image) (*btrfsImage, error) {
	if string(base.Bytes(btrfsSuper+0x40, 8)) != "_BHRfS_M" || base.U32(btrfsSuper+0x94) != btrfsNode || base.U16(btrfsSuper+0xc4) != 0 {
		return nil, errors.New("not a Btrfs image with 4 KiB nodes and crc32c")
	}
	fsid := base.Bytes(btrfsSuper+0x20, 16)
	bi := &btrfsImage{base: base, leaves: map[int64][]btrfsItemAt{}, nodes: map[int64]int{}, level: map[int64]uint8{}}
	for blk := int64(btrfsSuper + 4096); blk+btrfsNode <= base.Size(); blk += btrfsNode {
		h := base.Bytes(blk, btrfsHeader)
		if !bytes.Equal(h[0x20:0x30], fsid) || int64(base.U64(blk+0x30)) != blk ||
			base.U32(blk) != crc32.Checksum(base.Bytes(blk+32, btrfsNode-32), castagnoli) {
			continue
		}
		n, level := int(base.U32(blk+0x60)), h[0x64]
		bi.level[blk] = level
		if level > 0 {
			bi.nodes[blk] = n
			continue
		}
		for i := 0; i < n && btrfsHeader+(i+1)*btrfsItem <= btrfsNode; i++ {
			at := blk + btrfsHeader + int64(i*btrfsItem)
			bi.leaves[blk] = append(bi.leaves[blk], btrfsItemAt{block: blk, objectid: base.U64(at), typ: base.Bytes(at+8, 1)[0],
				offset: base.U64(at + 9), data: blk + btrfsHeader + int64(base.U32(at+17)), size: int64(base.U32(at + 21))})
		}
	}
	// Keep the live leaves only (old copies of COW'd blocks stay on disk): those of the chunk tree, the
	// root tree and the top-level FS tree.
	live := map[int64]bool{}
	var reach func(blk int64, depth int)
	reach = func(blk int64, depth int) {
		if live[blk] || depth > 8 {
			return
		}
		live[blk] = true
		for i := 0; i < bi.nodes[blk]; i++ {
			reach(int64(base.U64(blk+btrfsHeader+int64(i*btrfsPtr)+17)), depth+1)
		}
	}
	reach(int64(base.U64(btrfsSuper+0x58)), 0)
	reach(int64(base.U64(btrfsSuper+0x50)), 0)
	for _, it := range bi.items(func(it btrfsItemAt) bool { return it.typ == btrfsRootItem && it.objectid == 5 && it.size >= 239 }) {
		if live[it.block] {
			reach(int64(base.U64(it.data+176)), 0)
		}
	}
	for blk := range bi.leaves {
		if !live[blk] {
			delete(bi.leaves, blk)
		}
	}
	if len(bi.leaves) < 3 {
		return nil, errors.New("the chunk, root and FS trees' leaves not found at their own addresses")
	}
	return bi, nil
}

// items returns the leaf items that match.
func (bi *btrfsImage) items(ok func(it btrfsItemAt) bool) []btrfsItemAt {
	var out []btrfsItemAt
	for blk := int64(0); blk < bi.base.Size(); blk += btrfsNode {
		for _, it := range bi.leaves[blk] {
			if ok(it) {
				out = append(out, it)
			}
		}
	}
	return out
}

// record is the fields of the first item as a record whose block checksum is fixed after each change.
func (bi *btrfsImage) record(what string, its []btrfsItemAt, step int64) record {
	if len(its) == 0 {
		return record{what: what, step: step}
	}
	it := its[0]
	return record{what: what, off: it.data, end: it.data + it.size/step*step, step: step,
		fix: func(im *Image) { fixBtrfsBlock(im, it.block) }}
}

// dirEntries returns the DIR_ITEM and DIR_INDEX items naming name.
func (bi *btrfsImage) dirEntries(name string) []btrfsItemAt {
	return bi.items(func(it btrfsItemAt) bool {
		return (it.typ == btrfsDirItem || it.typ == btrfsDirIndex) && it.size == int64(30+len(name)) &&
			string(bi.base.Bytes(it.data+30, len(name))) == name
	})
}

// btrfsPlan: the superblock with its crc32c, big.bin's inode item and extent, zstd.txt's compressed
// extent, the chunk tree's chunk items and the FS tree's root node, each tree block's crc32c fixed after
// a change; loopdir's entries re-pointed in their DIR_ITEM and DIR_INDEX.
func btrfsPlan(base *Image) (fsPlan, error) {
	bi, err := scanBtrfs(base)
	if err != nil {
		return fsPlan{}, err
	}
	bigInode := bi.items(func(it btrfsItemAt) bool {
		return it.typ == btrfsInodeItem && it.size == 160 && base.U64(it.data+16) == BigFileSize
	})
	if len(bigInode) == 0 {
		return fsPlan{}, errors.New("big.bin's inode item not found")
	}
	ino := bigInode[0].objectid
	extentOf := func(ino uint64) []btrfsItemAt {
		return bi.items(func(it btrfsItemAt) bool { return it.typ == btrfsExtentData && it.objectid == ino && it.size == 53 })
	}
	zstdFile := bi.dirEntries("zstd.txt")
	if len(zstdFile) == 0 {
		return fsPlan{}, errors.New("zstd.txt not found")
	}
	zstdExtent := extentOf(base.U64(zstdFile[0].data))
	if len(zstdExtent) == 0 || base.Bytes(zstdExtent[0].data+16, 1)[0] != 3 {
		return fsPlan{}, errors.New("zstd.txt has no zstd extent")
	}
	chunks := bi.items(func(it btrfsItemAt) bool { return it.typ == btrfsChunkItem && it.size >= 80 })
	fsRoot := bi.items(func(it btrfsItemAt) bool { return it.typ == btrfsRootItem && it.objectid == 5 && it.size >= 239 })
	if len(chunks) == 0 || len(fsRoot) == 0 {
		return fsPlan{}, errors.New("chunk items or the FS tree's root item not found")
	}
	p := fsPlan{
		super:    []span{{btrfsSuper + 0x20, btrfsSuper + 0x12b, 4}, {btrfsSuper + 0x32b, btrfsSuper + 0x32b + int64(base.U32(btrfsSuper+0xa0)), 4}},
		fixSuper: fixBtrfsSuper,
		maxSize:  1<<63 - 1,
		bounds:   []int64{btrfsSuper, btrfsSuper + 4096, bigInode[0].block, chunks[0].block},
	}
	p.setSize = func(im *Image, size uint64) error {
		im.PutLE(bigInode[0].data+16, 8, size)
		fixBtrfsBlock(im, bigInode[0].block)
		return nil
	}
	loopdir := bi.dirEntries("loopdir")
	p.repoint = func(im *Image, name string, up bool) error {
		if len(loopdir) == 0 {
			return errors.New("loopdir not found")
		}
		target := uint64(256) // the top-level directory
		if !up {
			target = base.U64(loopdir[0].data)
		}
		entries := bi.dirEntries(name)
		for _, it := range entries {
			im.PutLE(it.data, 8, target)
			fixBtrfsBlock(im, it.block)
		}
		return atLeastOne("Btrfs entry "+name, offsets(entries))
	}
	p.records = append(p.records, bi.record("big.bin-inode", bigInode, 8), bi.record("big.bin-extent", extentOf(ino), 4),
		bi.record("zstd.txt-extent", zstdExtent, 4), bi.record("chunk-item", chunks[len(chunks)-1:], 4),
		bi.record("fs-root-item", fsRoot, 8))
	for blk, n := range bi.nodes {
		if blk == int64(base.U64(fsRoot[0].data+176)) {
			p.records = append(p.records, record{what: "fs-tree-node", off: blk + btrfsHeader, end: blk + btrfsHeader + int64(n*btrfsPtr),
				step: 4, fix: func(im *Image) { fixBtrfsBlock(im, blk) }})
		}
	}
	p.extra = func() ([]Case, error) { return btrfsExtra(bi, zstdExtent[0], chunks, fsRoot[0]) }
	return p, nil
}

func offsets(its []btrfsItemAt) []int64 {
	var out []int64
	for _, it := range its {
		out = append(out, it.data)
	}
	return out
}

// btrfsExtra are the named cases the issue lists: 2^32 devices, a tree node that is its own child,
// keys out of order, chunks mapped past the disk, a compressed extent that inflates past its size.
func btrfsExtra(bi *btrfsImage, zstd btrfsItemAt, chunks []btrfsItemAt, fsRoot btrfsItemAt) ([]Case, error) {
	base := bi.base
	var cases []Case
	add := func(name string, change func(im *Image)) {
		im := base.Clone()
		change(im)
		cases = append(cases, one("btrfs/"+name, im))
	}
	add("num_devices=2^32", func(im *Image) { im.PutLE(btrfsSuper+0x88, 8, 1<<32); fixBtrfsSuper(im) })
	add("num_devices=2^64-1", func(im *Image) { im.PutLE(btrfsSuper+0x88, 8, ^uint64(0)); fixBtrfsSuper(im) })
	fsTree := int64(base.U64(fsRoot.data + 176))
	add("fs-tree-loop", func(im *Image) { // the FS tree's root becomes a one-child node naming itself
		im.Put(fsTree+0x60, le32(1))
		im.Put(fsTree+0x64, []byte{1})
		im.Put(fsTree+btrfsHeader, append(append(le64(256), btrfsInodeItem), le64(0)...))
		im.PutLE(fsTree+btrfsHeader+17, 8, uint64(fsTree))
		im.Put(fsTree+btrfsHeader+25, base.Bytes(fsTree+0x50, 8)) // its generation
		fixBtrfsBlock(im, fsTree)
		im.Put(fsRoot.data+238, []byte{1})
		fixBtrfsBlock(im, fsRoot.block)
	})
	if bi.nodes[fsTree] >= 2 {
		add("fs-tree-shared-child", func(im *Image) { // both children are the first leaf
			im.Put(fsTree+btrfsHeader+btrfsPtr+17, base.Bytes(fsTree+btrfsHeader+17, 8))
			fixBtrfsBlock(im, fsTree)
		})
	}
	leaf := zstd.block
	if len(bi.leaves[leaf]) < 3 {
		return nil, errors.New("zstd.txt's leaf holds fewer than three items")
	}
	add("keys-out-of-order", func(im *Image) { // swap the keys of the leaf's first two items
		a, b := leaf+btrfsHeader, leaf+btrfsHeader+btrfsItem
		ka, kb := base.Bytes(a, 17), base.Bytes(b, 17)
		im.Put(a, kb)
		im.Put(b, ka)
		fixBtrfsBlock(im, leaf)
	})
	for _, c := range chunks {
		stripeOff := c.data + 48 + 8
		add(fmt.Sprintf("chunk@%d-past-disk", c.offset), func(im *Image) {
			im.PutLE(stripeOff, 8, 1<<40)
			fixBtrfsBlock(im, c.block)
		})
		add(fmt.Sprintf("chunk@%d-over-disk-end", c.offset), func(im *Image) {
			im.PutLE(stripeOff, 8, uint64(base.Size())-4096)
			fixBtrfsBlock(im, c.block)
		})
	}
	add("sys-chunk-past-disk", func(im *Image) {
		im.PutLE(btrfsSuper+0x32b+17+48+8, 8, 1<<40)
		fixBtrfsSuper(im)
	})
	add("zstd-inflates-past-its-size", func(im *Image) { // ram and length 4 KiB; the stream holds 128 KiB
		im.PutLE(zstd.data+8, 8, 4096)
		im.PutLE(zstd.data+37, 8, 0)
		im.PutLE(zstd.data+45, 8, 4096)
		fixBtrfsBlock(im, zstd.block)
	})
	return cases, nil
}
