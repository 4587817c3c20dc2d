package hostile

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// jbd2 block types and tag flags (the journal is big-endian).
const (
	jbdMagic      = 0xc03b3998
	jbdDescriptor = 1
	jbdCommit     = 2
	jbdSuperV2    = 4
	jbdRevoke     = 5
	jbdTagSame    = 2
	jbdTagLast    = 8
	jbdCsumV3     = 0x10
	jbd64bit      = 0x2
)

// The states a damaged journal or log may leave a volume in: replayed up to the last good commit, or
// not replayed and said to be dirty. Never "clean": the damage must not hide that the log was live.
var journalStates = []string{"replayed", "dirty"}

// jbd is the journal of an ext4-dirty image as the suite finds it: a contiguous internal journal.
type jbd struct {
	base          *Image
	sb, bs        int64 // byte offset of the journal superblock, block size
	seed          uint32
	start, seq    uint32
	descs, commit []int64 // byte offsets of the descriptor and commit blocks from the start, in order
	extents       [][3]int64
	revokes       []int64
	firstData     int64 // byte offset of the first logged copy
	tagSize       int64
}

// block returns the byte offset of journal block n, through the journal inode's extents (-1 past them).
func (j *jbd) block(n uint32) int64 {
	for _, e := range j.extents {
		if k := int64(n); k >= e[0] && k < e[0]+e[1] {
			return (e[2] + k - e[0]) * j.bs
		}
	}
	return -1
}

// journalExtents reads the extents of inode 8 (the journal), which must sit in its inode (depth 0):
// each is the first journal block, the count and the first filesystem block.
func journalExtents(base *Image, bs int64) ([][3]int64, error) {
	const sb = 1024
	isz := int64(base.U16(sb + 88))
	gd := bs * int64(1+base.U32(sb+20))
	ino := int64(base.U32(gd+8))*bs + 7*isz
	ib := ino + 40
	if base.U16(ib) != 0xf30a || base.U16(ib+6) != 0 {
		return nil, errors.New("the journal inode has no in-inode extent list")
	}
	var out [][3]int64
	for i := int64(0); i < int64(base.U16(ib+2)) && i < 4; i++ {
		e := ib + 12 + 12*i
		start := int64(base.U16(e+6))<<32 | int64(base.U32(e+8))
		out = append(out, [3]int64{int64(base.U32(e)), int64(base.U16(e + 4)), start})
	}
	return out, atLeastOne("journal extent", make([]int64, len(out)))
}

// crc32cRaw is the kernel's crc32c: no inversion before or after.
func crc32cRaw(seed uint32, b []byte) uint32 { return ^crc32.Update(^seed, castagnoli, b) }

func findJBD(base *Image) (*jbd, error) {
	const sb = 1024
	if base.U16(sb+56) != 0xef53 {
		return nil, errors.New("not an ext4 image")
	}
	bs := int64(1024) << base.U32(sb+24)
	b := base.all()
	at := find(b, be32(jbdMagic), func(off int64) bool {
		return off%bs == 0 && base.B32(off+4) == jbdSuperV2 && int64(base.B32(off+12)) == bs
	})
	if err := atLeastOne("jbd2 superblock", at); err != nil {
		return nil, err
	}
	j := &jbd{base: base, sb: at[0], bs: bs, start: base.B32(at[0] + 0x1C), seq: base.B32(at[0] + 0x18)}
	var err error
	if j.extents, err = journalExtents(base, bs); err != nil {
		return nil, err
	}
	if j.block(0) != j.sb {
		return nil, fmt.Errorf("the journal superblock at %d is not the journal inode's block 0", j.sb)
	}
	incompat := base.B32(j.sb + 0x28)
	if incompat&jbdCsumV3 == 0 || incompat&jbd64bit == 0 {
		return nil, fmt.Errorf("journal features %#x: the fixture is made with checksum v3 and 64-bit tags", incompat)
	}
	if j.start == 0 {
		return nil, errors.New("the journal is empty: the fixture was not snapshotted live")
	}
	j.seed = crc32cRaw(^uint32(0), base.Bytes(j.sb+0x30, 16))
	j.tagSize = 16
	maxlen := base.B32(j.sb + 0x10)
	seq := j.seq
	for pos := j.start; pos < maxlen; pos++ {
		off := j.block(pos)
		if off < 0 || base.B32(off) != jbdMagic || base.B32(off+8) != seq {
			break
		}
		switch base.B32(off + 4) {
		case jbdDescriptor:
			j.descs = append(j.descs, off)
			for t := off + 12; t+j.tagSize <= off+j.bs-4; {
				flags := base.B32(t + 4)
				t += j.tagSize
				if flags&jbdTagSame == 0 {
					t += 16
				}
				pos++
				if j.firstData == 0 {
					j.firstData = j.block(pos)
				}
				if flags&jbdTagLast != 0 {
					break
				}
			}
		case jbdCommit:
			j.commit = append(j.commit, off)
			seq++
		case jbdRevoke:
			j.revokes = append(j.revokes, off)
		}
	}
	if len(j.descs) < 2 || len(j.commit) < 2 {
		return nil, fmt.Errorf("%d descriptors and %d commits from block %d: the fixture's journal holds too little",
			len(j.descs), len(j.commit), j.start)
	}
	return j, nil
}

// fixSuper recomputes the journal superblock's checksum (crc32c of its 1024 bytes, the field zeroed).
func (j *jbd) fixSuper(im *Image) {
	im.PutBE(j.sb+0xFC, 4, 0)
	im.PutBE(j.sb+0xFC, 4, uint64(crc32cRaw(^uint32(0), im.Bytes(j.sb, 1024))))
}

// fixTail recomputes the checksum in the last 4 bytes of a descriptor or revoke block.
func (j *jbd) fixTail(im *Image, blk int64) {
	im.PutBE(blk+j.bs-4, 4, 0)
	im.PutBE(blk+j.bs-4, 4, uint64(crc32cRaw(j.seed, im.Bytes(blk, int(j.bs)))))
}

// fixCommit recomputes a commit block's checksum (at +16, over the block with it zeroed).
func (j *jbd) fixCommit(im *Image, blk int64) {
	im.PutBE(blk+16, 4, 0)
	im.PutBE(blk+16, 4, uint64(crc32cRaw(j.seed, im.Bytes(blk, int(j.bs)))))
}

// JournalCases derives damaged variants of a dirty image made by testdata/hostile/make-dirty.sh
// ("ext4-dirty" or "xfs-dirty"): bad checksums, a revoke loop, a transaction claiming 2^32 blocks, a
// log whose head cannot be found, header fields at extremes and cuts inside the log. Each case wants a
// volume whose state is replayed (up to the last good commit) or dirty, never clean.
func JournalCases(kind string, b []byte) ([]Case, error) {
	var cases []Case
	var err error
	switch kind {
	case "ext4-dirty":
		cases, err = ext4JournalCases(New(b))
	case "xfs-dirty":
		cases, err = xfsLogCases(New(b))
	default:
		return nil, fmt.Errorf("hostile: no journal plan for %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("hostile: %s: %w", kind, err)
	}
	for i := range cases {
		cases[i].Name = kind + "/" + cases[i].Name
		if cases[i].States == nil {
			cases[i].States = journalStates
		}
	}
	return append([]Case{{Name: kind + "/unchanged", Disks: []*Image{New(b)}, States: []string{"replayed"}}}, cases...), nil
}

func ext4JournalCases(base *Image) ([]Case, error) {
	j, err := findJBD(base)
	if err != nil {
		return nil, err
	}
	var cases []Case
	add := func(name string, im *Image) { cases = append(cases, one(name, im)) }
	// Bad checksums: each commit, each descriptor, the first logged copy, the superblock.
	for i, c := range j.commit {
		im := base.Clone()
		im.Put(c+16, []byte{^base.Bytes(c+16, 1)[0]})
		add(fmt.Sprintf("bad-commit-csum#%d", i), im)
	}
	for i, d := range j.descs {
		im := base.Clone()
		im.Put(d+j.bs-1, []byte{^base.Bytes(d+j.bs-1, 1)[0]})
		add(fmt.Sprintf("bad-descriptor-csum#%d", i), im)
	}
	im := base.Clone()
	im.Put(j.firstData+100, []byte{^base.Bytes(j.firstData+100, 1)[0]})
	add("bad-data-csum", im)
	im = base.Clone()
	im.Put(j.sb+0xFC, []byte{^base.Bytes(j.sb+0xFC, 1)[0]})
	add("bad-super-csum", im)

	// A revoke loop: the first descriptor becomes a revoke block naming the same blocks over and over
	// (the superblock's, the journal's own), in a log shrunk to that one block, so a scan that does not
	// count what it read goes round it for ever.
	revoke := func(count uint32, shrink bool) *Image {
		im := base.Clone()
		d := j.descs[0]
		im.PutBE(d+4, 4, jbdRevoke)
		im.PutBE(d+12, 4, uint64(count))
		for off := d + 16; off+8 <= d+j.bs-4; off += 8 {
			im.PutBE(off, 8, uint64(((off-d)/8)%3)) // blocks 0, 1, 2 again and again
		}
		j.fixTail(im, d)
		if shrink {
			im.PutBE(j.sb+0x14, 4, uint64(j.start))   // s_first
			im.PutBE(j.sb+0x10, 4, uint64(j.start+1)) // s_maxlen
			j.fixSuper(im)
		}
		return im
	}
	add("revoke-loop", revoke(uint32(j.bs-4), true))
	add("revoke-repeated", revoke(uint32(j.bs-4), false))
	add("revoke-count=2^32-1", revoke(^uint32(0), true))
	// A log of one block holding the first descriptor: its logged copies wrap onto it.
	im = base.Clone()
	im.PutBE(j.sb+0x14, 4, uint64(j.start))
	im.PutBE(j.sb+0x10, 4, uint64(j.start+1))
	j.fixSuper(im)
	add("descriptor-loop", im)

	// A transaction claiming 2^32 blocks: a log of 2^32-1 blocks, and tags naming block 2^32-1 and the
	// 64-bit block 2^64-1.
	im = base.Clone()
	im.PutBE(j.sb+0x10, 4, 0xffffffff)
	j.fixSuper(im)
	add("log-of-2^32-blocks", im)
	for _, hi := range []uint32{0, 0xffffffff} {
		im := base.Clone()
		d := j.descs[0]
		for t := d + 12; t+j.tagSize <= d+j.bs-4; {
			flags := base.B32(t + 4)
			im.PutBE(t, 4, 0xffffffff)
			im.PutBE(t+8, 4, uint64(hi))
			t += j.tagSize
			if flags&jbdTagSame == 0 {
				t += 16
			}
			if flags&jbdTagLast != 0 {
				break
			}
		}
		j.fixTail(im, d)
		add(fmt.Sprintf("tags-naming-block-%#x", uint64(hi)<<32|0xffffffff), im)
	}
	// Tags without an end: every tag of the first descriptor loses its last-tag flag.
	im = base.Clone()
	for t := j.descs[0] + 12; t+j.tagSize <= j.descs[0]+j.bs-4; t += j.tagSize {
		im.PutBE(t+4, 4, uint64(base.B32(t+4)&^jbdTagLast|jbdTagSame))
	}
	j.fixTail(im, j.descs[0])
	add("tags-without-end", im)

	// Superblock and header fields at extremes, the checksums made right again.
	for off := j.sb; off < j.sb+0x60; off += 4 {
		for _, v := range extremes(base.Bytes(off, 4)) {
			im := base.Clone()
			im.Put(off, v)
			j.fixSuper(im)
			add(fmt.Sprintf("jsb@%#x=%x", off-j.sb, v), im)
		}
	}
	for i, blk := range []int64{j.descs[0], j.commit[0]} {
		for off := blk + 4; off < blk+64; off += 4 {
			for _, v := range extremes(base.Bytes(off, 4)) {
				im := base.Clone()
				im.Put(off, v)
				if i == 0 {
					j.fixTail(im, blk)
				} else {
					j.fixCommit(im, blk)
				}
				add(fmt.Sprintf("%s@%d=%x", []string{"descriptor", "commit"}[i], off-blk, v), im)
			}
		}
	}
	// Cuts inside the journal.
	for _, c := range []int64{j.sb + 512, j.descs[0] + 8, j.firstData + 1, j.commit[0], j.commit[len(j.commit)-1] + 1} {
		add(fmt.Sprintf("truncate@%d", c), base.Truncated(c))
	}
	return cases, nil
}
