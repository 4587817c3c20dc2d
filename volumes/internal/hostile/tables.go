package hostile

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"
)

// MBRCases damages an MBR disk with an extended partition (testdata/volumes ebrtiny.img): primary
// entries at extremes, extended entries that point at the MBR itself or past the end, and each EBR's
// link pointing at itself, back at the first EBR, past the end, or wrapping around.
func MBRCases(name string, b []byte) ([]Case, error) {
	base := New(b)
	if base.U16(510) != 0xaa55 {
		return nil, fmt.Errorf("hostile: %s: no MBR signature", name)
	}
	entry := func(sector int64, i int) int64 { return sector*512 + 446 + 16*int64(i) }
	var cases []Case
	add := func(what string, edit func(im *Image)) {
		im := base.Clone()
		edit(im)
		cases = append(cases, one(name+"/"+what, im))
	}
	ext := int64(-1)
	for i := range 4 {
		e := entry(0, i)
		switch b[e+4] {
		case 0x05, 0x0f, 0x85:
			ext = int64(base.U32(e + 8))
		}
		for _, f := range []struct {
			field string
			off   int64
		}{{"start", 8}, {"sectors", 12}} {
			for _, v := range []uint64{0, 1, 0x7fffffff, 0xffffffff} {
				add(fmt.Sprintf("primary%d-%s=%#x", i+1, f.field, v), func(im *Image) { im.PutLE(e+f.off, 4, v) })
			}
		}
		add(fmt.Sprintf("primary%d-extended-at-mbr", i+1), func(im *Image) {
			im.Put(e+4, []byte{0x05})
			im.PutLE(e+8, 4, 0)
			im.PutLE(e+12, 4, uint64(len(b)/512))
		})
	}
	add("all-four-extended-same-ebr", func(im *Image) {
		for i := range 4 {
			im.Put(entry(0, i)+4, []byte{0x0f})
			im.PutLE(entry(0, i)+8, 4, uint64(max(ext, 1)))
			im.PutLE(entry(0, i)+12, 4, uint64(int64(len(b)/512)-max(ext, 1)))
		}
	})
	add("no-signature", func(im *Image) { im.PutLE(510, 2, 0) })
	if ext < 0 {
		return nil, fmt.Errorf("hostile: %s: no extended partition", name)
	}
	// Follow the chain as it is, then damage each EBR's link and its logical entry.
	var ebrs []int64
	for cur, seen := ext, map[int64]bool{}; cur > 0 && cur*512+512 <= int64(len(b)) && !seen[cur]; {
		seen[cur] = true
		ebrs = append(ebrs, cur)
		next := int64(base.U32(entry(cur, 1) + 8))
		if next == 0 {
			break
		}
		cur = ext + next
	}
	for k, ebr := range ebrs {
		link := entry(ebr, 1)
		links := map[string]uint64{
			"self": uint64(ebr - ext), "first": 0, "past-end": uint64(len(b) / 512), "max": 0xffffffff,
			"mbr-wrap": uint64(0x100000000 - ext),
		}
		for what, v := range links {
			add(fmt.Sprintf("ebr%d-link-%s", k+1, what), func(im *Image) {
				im.Put(link+4, []byte{0x05})
				im.PutLE(link+8, 4, v)
				im.PutLE(link+12, 4, 1)
			})
		}
		for _, v := range []uint64{0, 0xffffffff} {
			add(fmt.Sprintf("ebr%d-logical-start=%#x", k+1, v), func(im *Image) { im.PutLE(entry(ebr, 0)+8, 4, v) })
			add(fmt.Sprintf("ebr%d-logical-sectors=%#x", k+1, v), func(im *Image) { im.PutLE(entry(ebr, 0)+12, 4, v) })
		}
		add(fmt.Sprintf("ebr%d-no-signature", k+1), func(im *Image) { im.PutLE(ebr*512+510, 2, 0) })
		add(fmt.Sprintf("ebr%d-both-entries-extended-to-self", k+1), func(im *Image) {
			for i := range 2 {
				im.Put(entry(ebr, i)+4, []byte{0x05})
				im.PutLE(entry(ebr, i)+8, 4, uint64(ebr-ext))
			}
		})
	}
	for _, c := range []int64{512, ext * 512, ext*512 + 511} {
		cases = append(cases, one(fmt.Sprintf("%s/truncate@%d", name, c), base.Truncated(c)))
	}
	for _, ebr := range ebrs {
		cases = append(cases, one(fmt.Sprintf("%s/truncate@%d", name, ebr*512+256), base.Truncated(ebr*512+256)))
	}
	return cases, nil
}

// GPTCases damages a GPT disk with sectorSize-byte sectors: each header field at extremes with the
// header CRC made right again (in the primary, and in both headers so the backup cannot save it), a
// partition array as large as the disk with a valid CRC, entries past the end and reversed, bad CRCs.
func GPTCases(name string, b []byte, sectorSize int64) ([]Case, error) {
	base := New(b)
	hdr := sectorSize
	if string(base.Bytes(hdr, 8)) != "EFI PART" {
		return nil, fmt.Errorf("hostile: %s: no GPT header in LBA 1", name)
	}
	backup := int64(base.U64(hdr+32)) * sectorSize
	if string(base.Bytes(backup, 8)) != "EFI PART" {
		return nil, fmt.Errorf("hostile: %s: no backup GPT header", name)
	}
	fixHeader := func(im *Image, h int64) {
		size := min(int64(im.U32(h+12)), sectorSize)
		im.PutLE(h+16, 4, 0)
		im.PutLE(h+16, 4, uint64(crc32.ChecksumIEEE(im.Bytes(h, int(size)))))
	}
	fixEntries := func(im *Image, h int64) {
		n := int64(im.U32(h+80)) * int64(im.U32(h+84))
		at := int64(im.U64(h+72)) * sectorSize
		if n <= int64(len(b)) && at >= 0 && at+n <= int64(len(b)) {
			im.PutLE(h+88, 4, uint64(crc32.ChecksumIEEE(im.Bytes(at, int(n)))))
		}
		fixHeader(im, h)
	}
	var cases []Case
	add := func(what string, edit func(im *Image)) {
		im := base.Clone()
		edit(im)
		cases = append(cases, one(name+"/"+what, im))
	}
	fields := []struct {
		name  string
		off   int64
		width int
	}{{"revision", 8, 4}, {"header-size", 12, 4}, {"my-lba", 24, 8}, {"alternate-lba", 32, 8},
		{"first-usable", 40, 8}, {"last-usable", 48, 8}, {"entries-lba", 72, 8}, {"entry-count", 80, 4},
		{"entry-size", 84, 4}}
	diskSectors := uint64(len(b)) / uint64(sectorSize)
	for _, f := range fields {
		for _, v := range []uint64{0, 1, 127, 129, diskSectors, diskSectors + 1, 0xffffffff, 1 << 63, ^uint64(0)} {
			if f.width == 4 && v > 0xffffffff {
				continue
			}
			for _, where := range []string{"primary", "both"} {
				add(fmt.Sprintf("%s-%s=%#x", where, f.name, v), func(im *Image) {
					for _, h := range []int64{hdr, backup} {
						im.PutLE(h+f.off, f.width, v)
						fixEntries(im, h)
						if where == "primary" {
							break
						}
					}
				})
			}
		}
	}
	// An array that fills the rest of the disk, CRC and all: big but bounded by the disk.
	add("both-entries-fill-disk", func(im *Image) {
		for _, h := range []int64{hdr, backup} {
			im.PutLE(h+72, 8, 2)
			im.PutLE(h+80, 4, uint64(len(b))/128-uint64(2*sectorSize)/128)
			fixEntries(im, h)
		}
	})
	entries := int64(base.U64(hdr+72)) * sectorSize
	for i := int64(0); i < 2; i++ {
		e := entries + i*int64(base.U32(hdr+84))
		for _, f := range []struct {
			name        string
			first, last uint64
		}{{"reversed", 100, 50}, {"past-end", diskSectors - 1, diskSectors + 100},
			{"max", ^uint64(0) - 1, ^uint64(0)}, {"whole-disk", 0, diskSectors - 1}, {"over-header", 1, 1}} {
			add(fmt.Sprintf("both-entry%d-%s", i+1, f.name), func(im *Image) {
				for _, h := range []int64{hdr, backup} {
					at := int64(im.U64(h+72))*sectorSize + i*int64(base.U32(hdr+84))
					im.PutLE(at+32, 8, f.first)
					im.PutLE(at+40, 8, f.last)
					fixEntries(im, h)
				}
			})
		}
		add(fmt.Sprintf("primary-entry%d-crc-wrong", i+1), func(im *Image) { im.Put(e+56, []byte("X")) })
	}
	add("both-header-crc-wrong", func(im *Image) {
		im.Put(hdr+16, []byte{0xde, 0xad})
		im.Put(backup+16, []byte{0xde, 0xad})
	})
	for _, c := range []int64{sectorSize, sectorSize + 92, 2 * sectorSize, entries + 64, backup, backup + 92} {
		cases = append(cases, one(fmt.Sprintf("%s/truncate@%d", name, c), base.Truncated(c)))
	}
	return cases, nil
}

// lvmAreas finds every LVM2 metadata area header in b: the offsets of its magic, 4 bytes into a sector.
func lvmAreas(b []byte) []int64 {
	return find(b, []byte(" LVM2 x[5A%r0N*>"), func(off int64) bool { return off%512 == 4 })
}

// lvmCRC is lvm2's checksum: reflected IEEE CRC-32 seeded with 0xf597a6cf, without final inversion.
func lvmCRC(b []byte) uint32 { return ^crc32.Update(^uint32(0xf597a6cf), crc32.IEEETable, b) }

// LVMCases damages the metadata text of an LVM volume group spread over disks: each edit rewrites the
// text in every metadata area of every disk and makes both checksums right again, so the hostile values
// reach the parser and the assembly.
func LVMCases(name string, disks [][]byte) ([]Case, error) {
	var text string
	for _, d := range disks {
		for _, a := range lvmAreas(d) {
			h := a - 4
			im := New(d)
			off, size := int64(im.U64(h+40)), int64(im.U64(h+48))
			if size > 0 && h+off+size <= int64(len(d)) {
				text = string(d[h+off : h+off+size])
			}
		}
	}
	if text == "" {
		return nil, fmt.Errorf("hostile: %s: no LVM metadata text", name)
	}
	rewrite := func(newText string) []*Image {
		var ims []*Image
		for _, d := range disks {
			im := New(d)
			for _, a := range lvmAreas(d) {
				h := a - 4
				areaSize := int64(im.U64(h + 32))
				off := int64(im.U64(h + 40))
				if int64(len(newText)) > areaSize-off {
					off = 512
				}
				im.Put(h+off, []byte(newText))
				im.PutLE(h+40, 8, uint64(off))
				im.PutLE(h+48, 8, uint64(len(newText)))
				im.PutLE(h+56, 4, uint64(lvmCRC([]byte(newText))))
				im.PutLE(h, 4, uint64(lvmCRC(im.Bytes(h+4, 508))))
			}
			ims = append(ims, im)
		}
		return ims
	}
	var cases []Case
	add := func(what, newText string) {
		if newText == text {
			return
		}
		cases = append(cases, Case{Name: name + "/" + what, Disks: rewrite(newText)})
	}
	huge := []string{"0", "-1", "9223372036854775807", "18446744073709551616", "4294967296"}
	for _, key := range []string{"extent_size", "extent_count", "start_extent", "stripe_count", "pe_start",
		"pe_count", "stripe_size", "region_size", "dev_size", "seqno", "segment_count", "area_count"} {
		re := regexp.MustCompile(`(?m)(\b` + key + ` = )(-?\d+)`)
		for _, v := range huge {
			add(fmt.Sprintf("all-%s=%s", key, v), re.ReplaceAllString(text, "${1}"+v))
			first := true
			add(fmt.Sprintf("first-%s=%s", key, v), re.ReplaceAllStringFunc(text, func(m string) string {
				if !first {
					return m
				}
				first = false
				return re.ReplaceAllString(m, "${1}"+v)
			}))
		}
	}
	// Stripes naming a PV that does not exist, and every LV on the first PV's extent 0.
	add("stripes-unknown-pv", regexp.MustCompile(`"pv\d+"`).ReplaceAllString(text, `"pv99"`))
	add("stripes-all-at-zero", regexp.MustCompile(`("pv\d+", )\d+`).ReplaceAllString(text, "${1}0"))
	// Structure: a nesting deeper than any parser's stack should follow, an unterminated section, an
	// enormous list, and the text cut in the middle.
	add("nesting-100000", strings.Replace(text, "{", "{"+strings.Repeat("a = [", 100000), 1))
	add("unterminated-section", text[:strings.LastIndex(text, "}")])
	add("list-of-200000", strings.Replace(text, "{", "{\nbig = ["+strings.Repeat("1, ", 200000)+"1]\n", 1))
	add("text-half", text[:len(text)/2])
	add("unterminated-string", strings.Replace(text, `"`, "", -1)[:len(text)/3]+`"`+strings.Repeat("x", 1000))
	// The metadata area header pointing its text past the area and the disk.
	for _, v := range []uint64{0xffffffff, 1 << 62} {
		var ims []*Image
		for _, d := range disks {
			im := New(d)
			for _, a := range lvmAreas(d) {
				im.PutLE(a-4+48, 8, v)
				im.PutLE(a-4, 4, uint64(lvmCRC(im.Bytes(a, 508))))
			}
			ims = append(ims, im)
		}
		cases = append(cases, Case{Name: fmt.Sprintf("%s/text-size=%#x", name, v), Disks: ims})
	}
	if !bytes.Contains([]byte(text), []byte("extent_count")) {
		return nil, fmt.Errorf("hostile: %s: metadata text has no segments", name)
	}
	return cases, nil
}
