package hostile

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// FanCases derives the directory-fan cases from a fan-<kind> image of testdata/hostile/make.sh: fanA
// nested 16 levels deep, each level also holding an empty fanB. Re-pointing every fanB at its sibling
// fanA makes no loop, but 2^16 paths out of 32 directories: a reader must refuse the second link to a
// directory (as the kernel does) rather than let a walk go on for hours.
func FanCases(kind string, b []byte) ([]Case, error) {
	base := New(b)
	im := base.Clone()
	n, err := repointFan(kind, base, im)
	if err != nil {
		return nil, fmt.Errorf("hostile: fan-%s: %w", kind, err)
	}
	if n < 16 {
		return nil, fmt.Errorf("hostile: fan-%s: only %d fanB entries re-pointed", kind, n)
	}
	return []Case{one("fan-"+kind+"/unchanged", base), one("fan-"+kind+"/every-fanB->fanA", im)}, nil
}

// repointFan points every fanB entry of base at the directory its sibling fanA names, in im, and
// returns how many it changed.
func repointFan(kind string, base, im *Image) (int, error) {
	b := base.all()
	// pairs finds each fanB name with the fanA name of the same directory, at most within before bytes
	// ahead of it (listings are sorted or in creation order: fanA comes first).
	pairs := func(a, bName []byte, before int64, ok func(off int64) bool) [][2]int64 {
		var out [][2]int64
		for _, nb := range find(b, bName, ok) {
			var best int64 = -1
			for _, na := range find(b[max(0, nb-before):nb], a, nil) {
				if at := max(0, nb-before) + na; ok(at) {
					best = at
				}
			}
			if best >= 0 {
				out = append(out, [2]int64{best, nb})
			}
		}
		return out
	}
	var ps [][2]int64
	switch kind {
	case "ext4":
		ps = pairs([]byte("fanA"), []byte("fanB"), 64, func(off int64) bool { return off >= 8 && b[off-2] == 4 && b[off-1] == 2 })
		for _, p := range ps {
			im.Put(p[1]-8, base.Bytes(p[0]-8, 4))
		}
	case "xfs":
		if base.B16(100)&0xf != 5 {
			return 0, errors.New("not XFS v5")
		}
		isz := int64(base.B16(104))
		ps = pairs([]byte("fanA"), []byte("fanB"), 64, func(off int64) bool {
			ino := off - off%isz
			return off >= 3 && b[off-3] == 4 && base.B16(ino) == 0x494e && b[ino+5] == 1
		})
		for _, p := range ps {
			ino := p[1] - p[1]%isz
			width := 4
			if b[ino+177] != 0 {
				width = 8
			}
			im.Put(p[1]+4+1, base.Bytes(p[0]+4+1, width)) // after the name and its file type byte
			im.PutLE(ino+100, 4, 0)
			im.PutLE(ino+100, 4, uint64(crc32.Checksum(im.Bytes(ino, int(isz)), castagnoli)))
		}
	case "squashfs":
		ps = pairs([]byte("fanA"), []byte("fanB"), 16, func(off int64) bool {
			return off >= 8 && base.U16(off-2) == 3 && base.U16(off-4) == 1
		})
		for _, p := range ps {
			im.Put(p[1]-8, base.Bytes(p[0]-8, 4)) // inode offset and inode number delta
		}
	case "ntfs":
		u := func(s string) []byte { return utf16le(s) }
		ps = pairs(u("fanA"), u("fanB"), 200, func(off int64) bool {
			return off >= 82 && b[off-2] == 4 && base.U16(off-82+10) == 66+8
		})
		for _, p := range ps {
			im.Put(p[1]-82, base.Bytes(p[0]-82, 8))
		}
	case "fat":
		ps = pairs([]byte("FANA       "), []byte("FANB       "), 4096, func(off int64) bool {
			return off%32 == 0 && b[off+11]&0x10 != 0
		})
		for _, p := range ps {
			im.Put(p[1]+20, base.Bytes(p[0]+20, 2))
			im.Put(p[1]+26, base.Bytes(p[0]+26, 2))
		}
	case "exfat":
		ps = pairs(utf16le("fanA"), utf16le("fanB"), 4096, func(off int64) bool {
			return off%32 == 2 && b[off-2] == 0xc1 && b[off-34] == 0xc0 && b[off-66] == 0x85
		})
		for _, p := range ps {
			sa, sb := p[0]-34, p[1]-34 // the stream entries
			im.Put(sb+1, base.Bytes(sa+1, 1))
			im.Put(sb+8, base.Bytes(sa+8, 8))
			im.Put(sb+20, base.Bytes(sa+20, 12))
			set := sb - 32
			var sum uint16
			for i, c := range im.Bytes(set, 96) {
				if i != 2 && i != 3 {
					sum = (sum&1)<<15 | sum>>1 + uint16(c)
				}
			}
			im.PutLE(set+2, 2, uint64(sum))
		}
	case "iso":
		for _, names := range [][2][]byte{{[]byte("FANA"), []byte("FANB")}, {utf16be("fanA"), utf16be("fanB")}} {
			n := len(names[0])
			got := pairs(names[0], names[1], 512, func(off int64) bool {
				return off >= 33 && b[off-1] == byte(n) && b[off-33+25]&2 != 0
			})
			for _, p := range got {
				im.Put(p[1]-33+2, base.Bytes(p[0]-33+2, 16)) // extent and length, both byte orders
			}
			ps = append(ps, got...)
		}
	case "btrfs":
		bi, err := scanBtrfs(base)
		if err != nil {
			return 0, err
		}
		// Each fanB's DIR_ITEM and DIR_INDEX take the location of the fanA of the same directory.
		fanA := map[uint64]uint64{} // directory → fanA's inode
		for _, it := range bi.dirEntries("fanA") {
			fanA[it.objectid] = base.U64(it.data)
		}
		for _, it := range bi.dirEntries("fanB") {
			if a, ok := fanA[it.objectid]; ok {
				im.PutLE(it.data, 8, a)
				fixBtrfsBlock(im, it.block)
				if it.typ == btrfsDirIndex {
					ps = append(ps, [2]int64{0, it.data})
				}
			}
		}
	default:
		return 0, fmt.Errorf("no fan plan for %q", kind)
	}
	return len(ps), nil
}
