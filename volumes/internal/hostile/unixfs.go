package hostile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ext4Plan: superblock at 1024 (the images have no metadata checksums), inodes with i_size_lo at +4 and
// i_size_high at +108, linear directory blocks that start with "." and "..".
func ext4Plan(base *Image) (fsPlan, error) {
	const sb = 1024
	bs := int64(1024) << base.U32(sb+24)
	isz := int64(base.U16(sb + 88))
	if base.U16(sb+56) != 0xef53 || bs > 65536 || isz < 128 || isz > bs {
		return fsPlan{}, errors.New("not an ext4 image with a readable superblock")
	}
	b := base.all()
	sizeAt := find(b, le32(BigFileSize), func(off int64) bool {
		// inode tables start on a block boundary, so an inode's size field sits at 4 mod the inode size.
		return off%isz == 4 && base.U16(off-4)&0xf000 == 0x8000
	})
	p := fsPlan{
		super:   []span{{sb, sb + 256, 4}},
		maxSize: 1<<63 - 1,
		bounds:  []int64{sb, sb + 1024, bs * int64(1+base.U32(sb+20))},
	}
	gd := bs * int64(1+base.U32(sb+20))
	p.bounds = append(p.bounds, int64(base.U32(gd+8))*bs) // group 0's inode table
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			im.PutLE(off, 4, size&0xffffffff)
			im.PutLE(off+104, 4, size>>32)
		}
		return atLeastOne("ext4 inode of big.bin", sizeAt)
	}
	p.repoint = func(im *Image, name string, up bool) error {
		at := find(b, []byte(name), func(off int64) bool {
			return off >= 8 && b[off-2] == byte(len(name)) && b[off-1] == 2
		})
		if err := atLeastOne("ext4 entry "+name, at); err != nil {
			return err
		}
		entry := at[0] - 8
		block := entry - entry%bs
		if string(b[block+8:block+9]) != "." || b[block+6] != 1 {
			return fmt.Errorf("ext4 block at %d does not start with \".\"", block)
		}
		target := base.U32(block) // "."
		if up {
			target = base.U32(block + int64(base.U16(block+4))) // ".."
		}
		im.PutLE(entry, 4, uint64(target))
		p.bounds = append(p.bounds, block)
		return nil
	}
	for _, off := range sizeAt {
		p.bounds = append(p.bounds, off-4)
	}
	loop := find(b, []byte("selfref"), func(off int64) bool { return off >= 8 && b[off-2] == 7 && b[off-1] == 2 })
	// passwd-abs is a fast symlink: its target sits in i_block at +40.
	link := find(b, []byte("/etc/passwd\x00"), func(off int64) bool {
		return (off-40)%isz == 0 && base.U16(off-40)&0xf000 == 0xa000
	})
	p.records = append(p.records, spanAt("big.bin-inode", sizeAt, -4, isz, 4), spanAt("loopdir-block", blockOf(loop, -8, bs), 0, 64, 2),
		spanAt("passwd-abs-inode", link, -40, isz, 4))
	return p, nil
}

// spanAt is a record of n bytes at the first of offs plus delta, with fields step bytes wide; empty
// (which FilesystemCases reports) when offs is.
func spanAt(what string, offs []int64, delta, n, step int64) record {
	if len(offs) == 0 {
		return record{what: what, step: step}
	}
	return record{what: what, off: offs[0] + delta, end: offs[0] + delta + n, step: step}
}

// blockOf returns the start of the size-byte block holding offs[0]+delta.
func blockOf(offs []int64, delta, size int64) []int64 {
	if len(offs) == 0 {
		return nil
	}
	at := offs[0] + delta
	return []int64{at - at%size}
}

// xfsPlan: a v5 superblock with its CRC at 224; inodes with the size at +56, CRC at +100 and number at
// +152; loopdir is a short-form directory in its inode's data fork at +176.
func xfsPlan(base *Image) (fsPlan, error) {
	if string(base.Bytes(0, 4)) != "XFSB" || base.B16(100)&0xf != 5 {
		return fsPlan{}, errors.New("not an XFS v5 image")
	}
	isz := int64(base.B16(104))
	ftype := base.B32(216)&1 != 0
	if isz < 256 || isz > 2048 {
		return fsPlan{}, fmt.Errorf("inode size %d", isz)
	}
	b := base.all()
	fixInode := func(im *Image, ino int64) {
		im.PutLE(ino+100, 4, 0)
		im.PutLE(ino+100, 4, uint64(crc32.Checksum(im.Bytes(ino, int(isz)), castagnoli)))
	}
	sizeAt := find(b, be64(BigFileSize), func(off int64) bool {
		return (off-56)%isz == 0 && base.B16(off-56) == 0x494e
	})
	p := fsPlan{
		super: []span{{0, 256, 4}},
		fixSuper: func(im *Image) {
			im.PutLE(224, 4, 0)
			im.PutLE(224, 4, uint64(crc32.Checksum(im.Bytes(0, 512), castagnoli)))
		},
		maxSize: 1<<63 - 1,
		bounds:  []int64{512, 1024, 1536, 2048, int64(base.B32(4)) * 4},
	}
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			im.PutBE(off, 8, size)
			fixInode(im, off-56)
		}
		return atLeastOne("XFS inode of big.bin", sizeAt)
	}
	p.repoint = func(im *Image, name string, up bool) error {
		// The name also appears in the log; the entry is the one inside a short-form directory inode.
		at := find(b, []byte(name), func(off int64) bool {
			ino := off - off%isz
			return off >= 3 && b[off-3] == byte(len(name)) && base.B16(ino) == 0x494e && b[ino+5] == 1
		})
		if err := atLeastOne("XFS short-form entry "+name, at); err != nil {
			return err
		}
		ino := at[0] - at[0]%isz
		wide := b[ino+177] != 0
		target := base.B64(ino + 152) // the directory's own number
		if up {
			if wide {
				target = base.B64(ino + 178)
			} else {
				target = uint64(base.B32(ino + 178))
			}
		}
		field := at[0] + int64(len(name))
		if ftype {
			field++
		}
		if wide {
			im.PutBE(field, 8, target)
		} else {
			im.PutBE(field, 4, target)
		}
		fixInode(im, ino)
		p.bounds = append(p.bounds, ino)
		return nil
	}
	for _, off := range sizeAt {
		p.bounds = append(p.bounds, off-56)
	}
	big := spanAt("big.bin-inode", sizeAt, -56, 176+32, 4)
	big.fix = func(im *Image) { fixInode(im, big.off) }
	loop := spanAt("loopdir-inode", blockOf(find(b, []byte("selfref"), func(off int64) bool {
		ino := off - off%isz
		return off >= 3 && b[off-3] == 7 && base.B16(ino) == 0x494e && b[ino+5] == 1
	}), 0, isz), 176, 64, 1) // the short-form directory in the data fork
	loop.fix = func(im *Image) { fixInode(im, loop.off-176) }
	// passwd-abs is a local symlink: its target fills the data fork.
	link := spanAt("passwd-abs-inode", find(b, []byte("/etc/passwd"), func(off int64) bool {
		return (off-176)%isz == 0 && base.B16(off-176) == 0x494e
	}), -176, 176+16, 4)
	link.fix = func(im *Image) { fixInode(im, link.off) }
	p.records = append(p.records, big, loop, link)
	return p, nil
}

// squashfsPlan: the images have uncompressed tables; big.bin is an extended regular inode (type 9, it
// has a hard link) with a 64-bit size at +24; directory entries are offset, inode delta, type, name size
// (length-1), name. The whole inode table fits one metadata block, so every entry names block 0 and
// re-pointing only changes the offset inside it.
func squashfsPlan(base *Image) (fsPlan, error) {
	if string(base.Bytes(0, 4)) != "hsqs" {
		return fsPlan{}, errors.New("not a squashfs image")
	}
	b := base.all()
	inodes, dirs := int64(base.U64(64)), int64(base.U64(72))
	if dirs-inodes > 8192+2 {
		return fsPlan{}, fmt.Errorf("inode table of %d bytes spans several metadata blocks", dirs-inodes)
	}
	root := base.U64(32)
	sizeAt := find(b, le64(BigFileSize), func(off int64) bool {
		return off >= inodes+24 && off < dirs && base.U16(off-24) == 9
	})
	p := fsPlan{
		super:   []span{{0, 96, 4}},
		maxSize: 1<<63 - 1,
		bounds:  []int64{96, inodes, dirs, int64(base.U64(40)), int64(base.U64(48)), int64(base.U64(56)), int64(base.U64(80))},
	}
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			im.PutLE(off, 8, size)
		}
		return atLeastOne("squashfs inode of big.bin", sizeAt)
	}
	entry := func(name string) (int64, error) {
		at := find(b, []byte(name), func(off int64) bool {
			typ := binary.LittleEndian.Uint16(b[off-4:]) // 1 directory … 7 socket
			return off >= dirs+8 && binary.LittleEndian.Uint16(b[off-2:]) == uint16(len(name)-1) && typ >= 1 && typ <= 7
		})
		if err := atLeastOne("squashfs entry "+name, at); err != nil {
			return 0, err
		}
		return at[0] - 8, nil
	}
	p.repoint = func(im *Image, name string, up bool) error {
		e, err := entry(name)
		if err != nil {
			return err
		}
		target := uint64(root & 0xffff)
		if !up {
			loop, err := entry("loopdir")
			if err != nil {
				return err
			}
			target = uint64(base.U16(loop))
		}
		// The entry's inode number (its header's base plus a signed delta) must match the inode's own
		// number (at +12 in it; inodes follow the metadata block's 2-byte header), or the reader
		// refuses the entry before any loop forms.
		number := func(offset uint64) int64 { return int64(base.U32(inodes + 2 + int64(offset) + 12)) }
		headerBase := number(uint64(base.U16(e))) - int64(int16(base.U16(e+2)))
		im.PutLE(e, 2, target)
		im.PutLE(e+2, 2, uint64(uint16(number(target)-headerBase)))
		return nil
	}
	for _, off := range sizeAt {
		p.bounds = append(p.bounds, off-24)
	}
	p.records = append(p.records, spanAt("big.bin-inode", sizeAt, -24, 64, 4))
	// passwd-abs is a basic symlink inode (type 3): header, link count, target size, target.
	link := find(b, []byte("/etc/passwd"), func(off int64) bool {
		return off >= inodes+24 && off < dirs && base.U32(off-4) == 11 && base.U16(off-24) == 3
	})
	p.records = append(p.records, spanAt("passwd-abs-inode", link, -24, 24+11, 2))
	first, err1 := entry("inner.txt")
	last, err2 := entry("upref")
	if err1 == nil && err2 == nil && last > first {
		// loopdir's listing: its header (12 bytes before the first entry) through its last entry.
		p.records = append(p.records, record{what: "loopdir-listing", off: first - 12, end: last + 8 + 5, step: 2})
	} else {
		p.records = append(p.records, record{what: "loopdir-listing", step: 2})
	}
	return p, nil
}
