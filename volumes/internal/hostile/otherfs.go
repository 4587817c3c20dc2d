package hostile

import (
	"errors"
	"fmt"
)

// ntfsPlan: big.bin's sizes are little-endian 64-bit fields (in its $DATA and $FILE_NAME attributes and
// in its index entry); index entries hold the entry's MFT reference at +0 and, in the $FILE_NAME key
// from +16, the parent directory's reference and the name (UTF-16) at +82.
func ntfsPlan(base *Image) (fsPlan, error) {
	if string(base.Bytes(3, 8)) != "NTFS    " {
		return fsPlan{}, errors.New("not an NTFS image")
	}
	b := base.all()
	// put writes through the update sequence fixup: a record's sector keeps its last two bytes in the
	// record's update sequence array, and the sector itself holds the sequence number there.
	put := func(im *Image, off int64, data []byte) {
		rec := off - off%1024
		if magic := string(b[rec : rec+4]); magic != "FILE" {
			rec = off - off%4096
		}
		usa := rec + int64(base.U16(rec+4))
		for i, c := range data {
			at := off + int64(i)
			if at%512 >= 510 && (string(b[rec:rec+4]) == "FILE" || string(b[rec:rec+4]) == "INDX") {
				at = usa + 2*((at-rec)/512+1) + at%512 - 510
			}
			im.Put(at, []byte{c})
		}
	}
	sizeAt := find(b, le64(BigFileSize), func(off int64) bool { return off%8 == 0 })
	p := fsPlan{super: []span{{0, 0x50, 1}}, maxSize: 1<<63 - 1}
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			put(im, off, le64(size))
		}
		return atLeastOne("NTFS size fields of big.bin", sizeAt)
	}
	// clear tells whether n bytes at off avoid the sector ends the fixup replaces, so they read as stored.
	clear := func(off, n int64) bool {
		return off%512+n <= 510 || off%512 >= 512-n && (off+n)%512 <= 510 && off%512 < 510
	}
	entries := func(name string) []int64 {
		n := utf16le(name)
		var out []int64
		for _, off := range find(b, n, nil) {
			e := off - 82
			if e >= 0 && b[off-2] == byte(len(name)) && base.U16(e+10) == uint16(66+len(n)) && clear(e+8, 4) && clear(e+16, 8) {
				out = append(out, e)
			}
		}
		return out
	}
	p.repoint = func(im *Image, name string, up bool) error {
		es := entries(name)
		if err := atLeastOne("NTFS index entry "+name, es); err != nil {
			return err
		}
		loops := entries("loopdir")
		if err := atLeastOne("NTFS index entry loopdir", loops); err != nil {
			return err
		}
		for _, e := range es {
			target := base.U64(e + 16) // the directory holding the entry
			if up {
				target = base.U64(loops[0] + 16)
			}
			put(im, e, le64(target))
			p.bounds = append(p.bounds, e-e%1024)
		}
		return nil
	}
	cluster := int64(base.U16(11)) * int64(b[13])
	mft := int64(base.U64(48)) * cluster
	p.bounds = []int64{512, mft, mft + 1024, mft + 5*1024, mft + 6*1024, int64(base.U64(56)) * cluster}
	for _, off := range sizeAt {
		p.bounds = append(p.bounds, off-off%1024)
	}
	// attribute finds the first attribute of a type in the MFT record holding off.
	attribute := func(offs []int64, typ uint32) []int64 {
		for _, off := range offs {
			rec := off - off%1024
			if string(b[rec:rec+4]) != "FILE" {
				continue
			}
			for a := rec + int64(base.U16(rec+0x14)); a+8 <= rec+1024; {
				t, n := base.U32(a), int64(base.U32(a+4))
				if t == typ {
					return []int64{a}
				}
				if t == 0xffffffff || n < 16 {
					break
				}
				a += n
			}
		}
		return nil
	}
	big := spanAt("big.bin-data-attribute", attribute(sizeAt, 0x80), 0, 0x60, 4)
	loop := spanAt("loopdir-index-root", attribute(entries("selfref"), 0x90), 0, 0x80, 4)
	// ntfs-3g writes passwd-abs as an Interix symlink: a system file whose data is "IntxLNK\1" and the
	// target in UTF-16.
	interix := find(b, append([]byte("IntxLNK\x01"), utf16le("/etc/passwd")...), nil)
	link := spanAt("passwd-abs-data-attribute", attribute(interix, 0x80), 0, 0x60, 4)
	big.put, loop.put, link.put = put, put, put
	p.records = append(p.records, big, loop, link)
	return p, nil
}

// fatPlan: 32-byte directory entries with the first cluster at +20 (high) and +26 (low) and the size
// at +28; a subdirectory starts with its "." and ".." entries.
func fatPlan(base *Image) (fsPlan, error) {
	if base.U16(510) != 0xaa55 || base.U16(11) == 0 {
		return fsPlan{}, errors.New("not a FAT image")
	}
	b := base.all()
	sizeAt := find(b, le32(BigFileSize), func(off int64) bool {
		return off%32 == 28 && string(b[off-28:off-17]) == "BIG     BIN"
	})
	bps := int64(base.U16(11))
	reserved := int64(base.U16(14))
	fatSize := int64(base.U16(22))
	root := (reserved + int64(b[16])*fatSize) * bps
	p := fsPlan{
		super:   []span{{0, 62, 1}},
		maxSize: 0xffffffff,
		bounds:  []int64{bps, reserved * bps, (reserved + fatSize) * bps, root, root + int64(base.U16(17))*32},
	}
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			im.PutLE(off, 4, size)
		}
		return atLeastOne("FAT entry of big.bin", sizeAt)
	}
	p.repoint = func(im *Image, name string, up bool) error {
		short := fmt.Sprintf("%-11s", upper(name))
		at := find(b, []byte(short), func(off int64) bool { return off%32 == 0 && b[off+11]&0x10 != 0 })
		if err := atLeastOne("FAT entry "+short, at); err != nil {
			return err
		}
		dot := at[0]
		for dot >= 0 && string(b[dot:dot+11]) != ".          " {
			dot -= 32
		}
		if dot < 0 {
			return errors.New("FAT directory without a \".\" entry")
		}
		src := dot
		if up {
			src = dot + 32
		}
		im.Put(at[0]+20, base.Bytes(src+20, 2))
		im.Put(at[0]+26, base.Bytes(src+26, 2))
		p.bounds = append(p.bounds, dot)
		return nil
	}
	for _, off := range sizeAt {
		p.bounds = append(p.bounds, off-off%bps)
	}
	loop := find(b, []byte("LOOPDIR    "), func(off int64) bool { return off%32 == 0 && b[off+11]&0x10 != 0 })
	p.records = append(p.records, spanAt("big.bin-entry", sizeAt, -28, 32, 1), spanAt("loopdir-entry", loop, 0, 32, 1))
	return p, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// exfatPlan: the boot region's checksum (sector 11) and each entry set's checksum are recomputed after a
// change; a stream extension entry (0xC0) holds the flags at +1, the valid length at +8, the first
// cluster at +20 and the length at +24, and follows its file entry (0x85).
func exfatPlan(base *Image) (fsPlan, error) {
	if string(base.Bytes(3, 8)) != "EXFAT   " {
		return fsPlan{}, errors.New("not an exFAT image")
	}
	b := base.all()
	sector := int64(1) << b[108]
	clusterSize := sector << b[109]
	fixBoot := func(im *Image) {
		var sum uint32
		for i, c := range im.Bytes(0, int(11*sector)) {
			if i == 106 || i == 107 || i == 112 {
				continue
			}
			sum = (sum&1)<<31 | sum>>1 + uint32(c)
		}
		for off := 11 * sector; off < 12*sector; off += 4 {
			im.PutLE(off, 4, uint64(sum))
		}
	}
	fixSet := func(im *Image, file int64) {
		n := int(im.Bytes(file+1, 1)[0]+1) * 32
		var sum uint16
		for i, c := range im.Bytes(file, n) {
			if i == 2 || i == 3 {
				continue
			}
			sum = (sum&1)<<15 | sum>>1 + uint16(c)
		}
		im.PutLE(file+2, 2, uint64(sum))
	}
	sizeAt := find(b, le64(BigFileSize), func(off int64) bool {
		return off%32 == 24 && b[off-24] == 0xc0 && b[off-56] == 0x85
	})
	p := fsPlan{super: []span{{64, 120, 1}}, fixSuper: fixBoot, maxSize: 1<<63 - 1}
	heap := int64(base.U32(88)) * sector
	p.bounds = []int64{11 * sector, 12 * sector, 24 * sector, int64(base.U32(80)) * sector, heap,
		heap + int64(base.U32(96)-2)*clusterSize}
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			im.PutLE(off, 8, size)
			im.PutLE(off-16, 8, size)
			fixSet(im, off-56)
		}
		return atLeastOne("exFAT stream entry of big.bin", sizeAt)
	}
	stream := func(name string) (int64, error) {
		at := find(b, utf16le(name), func(off int64) bool { return off%32 == 2 && b[off-2] == 0xc1 })
		if err := atLeastOne("exFAT entry set "+name, at); err != nil {
			return 0, err
		}
		s := at[0] - 2 - 32
		if b[s] != 0xc0 || b[s-32] != 0x85 {
			return 0, fmt.Errorf("exFAT name %s does not follow a stream entry", name)
		}
		return s, nil
	}
	p.repoint = func(im *Image, name string, up bool) error {
		s, err := stream(name)
		if err != nil {
			return err
		}
		if up {
			im.Put(s+1, []byte{1}) // allocation possible, cluster chain in the FAT
			im.PutLE(s+20, 4, uint64(base.U32(96)))
			im.PutLE(s+8, 8, uint64(clusterSize))
			im.PutLE(s+24, 8, uint64(clusterSize))
		} else {
			loop, err := stream("loopdir")
			if err != nil {
				return err
			}
			im.Put(s+1, base.Bytes(loop+1, 1))
			im.Put(s+8, base.Bytes(loop+8, 8))
			im.Put(s+20, base.Bytes(loop+20, 12))
		}
		fixSet(im, s-32)
		p.bounds = append(p.bounds, s-s%clusterSize)
		return nil
	}
	big := spanAt("big.bin-entry-set", sizeAt, -56, 96, 1)
	big.fix = func(im *Image) { fixSet(im, big.off) }
	var loopSet []int64
	if s, err := stream("loopdir"); err == nil {
		loopSet = []int64{s - 32}
	}
	loop := spanAt("loopdir-entry-set", loopSet, 0, 96, 1)
	loop.fix = func(im *Image) { fixSet(im, loop.off) }
	p.records = append(p.records, big, loop)
	return p, nil
}

// isoPlan: directory records hold the extent at +2 and the length at +10, each both-endian (LE then BE
// copies); a directory's sector starts with its "." and ".." records. Names: ISO 9660 upper case and
// Joliet UTF-16BE.
func isoPlan(base *Image) (fsPlan, error) {
	const pvd = 16 * 2048
	if string(base.Bytes(pvd+1, 5)) != "CD001" {
		return fsPlan{}, errors.New("not an ISO 9660 image")
	}
	b := base.all()
	both := append(le32(BigFileSize), be32(BigFileSize)...)
	sizeAt := find(b, both, func(off int64) bool { return off >= pvd+2048 && b[off-10] >= 34 })
	rootExtent := int64(base.U32(pvd+156+2)) * 2048
	p := fsPlan{
		super:   []span{{pvd + 80, pvd + 156, 4}, {pvd + 156, pvd + 190, 1}},
		maxSize: 0xffffffff,
		bounds: []int64{pvd, pvd + 2048, pvd + 4096, rootExtent, int64(base.U32(pvd+140)) * 2048,
			int64(base.U32(pvd+80)) * 2048},
	}
	putBoth := func(im *Image, off int64, v uint32) {
		im.PutLE(off, 4, uint64(v))
		im.PutBE(off+4, 4, uint64(v))
	}
	p.setSize = func(im *Image, size uint64) error {
		for _, off := range sizeAt {
			putBoth(im, off, uint32(size))
		}
		return atLeastOne("ISO 9660 records of big.bin", sizeAt)
	}
	p.repoint = func(im *Image, name string, up bool) error {
		var recs []int64
		for _, n := range [][]byte{[]byte(upper(name)), utf16be(name)} {
			recs = append(recs, find(b, n, func(off int64) bool {
				return off >= 33 && b[off-1] == byte(len(n)) && b[off-33+25]&2 != 0
			})...)
		}
		if err := atLeastOne("ISO 9660 directory record "+name, recs); err != nil {
			return err
		}
		for _, off := range recs {
			rec := off - 33
			dot := rec - rec%2048
			if b[dot+32] != 1 || b[dot+33] != 0 {
				return fmt.Errorf("ISO 9660 sector %d does not start with \".\"", dot/2048)
			}
			src := dot
			if up {
				src = dot + int64(b[dot])
			}
			im.Put(rec+2, base.Bytes(src+2, 16))
			p.bounds = append(p.bounds, dot)
		}
		return nil
	}
	for _, off := range sizeAt {
		p.bounds = append(p.bounds, off-off%2048)
	}
	big := spanAt("big.bin-record", sizeAt, -10, 0, 1)
	if len(sizeAt) > 0 {
		big.end = big.off + int64(b[big.off])
	}
	loop := find(b, []byte("SELFREF"), func(off int64) bool { return off >= 33 && b[off-1] == 7 })
	p.records = append(p.records, big, spanAt("loopdir-sector", blockOf(loop, 0, 2048), 0, 100, 1))
	return p, nil
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
