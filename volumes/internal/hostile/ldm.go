package hostile

import (
	"bytes"
	"fmt"
)

// LDMCases damages the Windows dynamic-disk database of disk (an MBR disk whose PRIVHEAD is in sector
// 6): PRIVHEAD area bounds (in every PRIVHEAD copy, so no copy saves the case), the TOCBLOCK's pointers,
// the VMDB header, and the header and first bytes of each VBLK record (the variable-length fields start
// there, so a length byte of 0xff runs a field past its record).
func LDMCases(name string, disk *Image) ([]Case, error) {
	const sector = 512
	ph := int64(6 * sector)
	if string(disk.Bytes(ph, 8)) != "PRIVHEAD" {
		return nil, fmt.Errorf("hostile: %s: no PRIVHEAD in sector 6", name)
	}
	configStart, configSize := int64(disk.B64(ph+0x12B))*sector, int64(disk.B64(ph+0x133))*sector
	if configSize <= 0 || configSize > 16<<20 || configStart+configSize > disk.Size() {
		return nil, fmt.Errorf("hostile: %s: config area %d+%d", name, configStart, configSize)
	}
	config := disk.Bytes(configStart, int(configSize))
	at := func(magic string, align int64) []int64 {
		var out []int64
		for _, o := range find(config, []byte(magic), func(off int64) bool { return off%align == 0 }) {
			out = append(out, configStart+o)
		}
		return out
	}
	privheads := append([]int64{ph}, at("PRIVHEAD", sector)...)
	tocs, vmdbs := at("TOCBLOCK", sector), at("VMDB", sector)
	if len(tocs) == 0 || len(vmdbs) == 0 {
		return nil, fmt.Errorf("hostile: %s: no TOCBLOCK or VMDB in the config area", name)
	}
	vblkSize := int64(disk.B32(vmdbs[0] + 8))
	var vblks []int64
	for _, v := range at("VBLK", 4) {
		if (v-vmdbs[0])%vblkSize == 0 && !bytes.Equal(disk.Bytes(v+14, 2), []byte{0, 0}) {
			vblks = append(vblks, v)
		}
	}
	if len(vblks) == 0 {
		return nil, fmt.Errorf("hostile: %s: no VBLK records", name)
	}
	var cases []Case
	add := func(what string, edit func(im *Image)) {
		im := disk.Clone()
		edit(im)
		cases = append(cases, one(name+"/"+what, im))
	}
	sectors := uint64(disk.Size() / sector)
	huge := []uint64{0, 3, sectors - 1, sectors, 1 << 63, ^uint64(0)}
	for _, f := range []struct {
		name string
		off  int64
	}{{"data-start", 0x11B}, {"data-size", 0x123}, {"config-start", 0x12B}, {"config-size", 0x133},
		{"log-start", 0x13B}, {"log-size", 0x143}} {
		for _, v := range huge {
			add(fmt.Sprintf("privhead-%s=%#x", f.name, v), func(im *Image) {
				for _, p := range privheads {
					im.PutBE(p+f.off, 8, v)
				}
			})
		}
	}
	for i := int64(0); i < 2; i++ {
		for _, f := range []struct {
			name string
			off  int64
		}{{"start", 0x0A}, {"size", 0x12}} {
			for _, v := range huge {
				add(fmt.Sprintf("tocblock-bitmap%d-%s=%#x", i+1, f.name, v), func(im *Image) {
					for _, t := range tocs {
						im.PutBE(t+0x24+0x22*i+f.off, 8, v)
					}
				})
			}
		}
	}
	for off := int64(4); off < 0x20; off += 4 {
		for _, v := range []uint64{0, 0xffffffff, 0x80000000, 16, 0x95} {
			add(fmt.Sprintf("vmdb@%d=%#x", off, v), func(im *Image) {
				for _, m := range vmdbs {
					im.PutBE(m+off, 4, v)
				}
			})
		}
	}
	for k, v := range vblks[:min(len(vblks), 8)] {
		for _, f := range []struct {
			name  string
			off   int64
			width int
		}{{"group", 8, 4}, {"entry", 12, 2}, {"entries", 14, 2}} {
			for _, x := range []uint64{0, 1, 0xffff, 0xffffffff} {
				if f.width == 2 && x > 0xffff {
					continue
				}
				add(fmt.Sprintf("vblk%d-%s=%#x", k+1, f.name, x), func(im *Image) { im.PutBE(v+f.off, f.width, x) })
			}
		}
		for off := int64(16); off < 40; off++ {
			add(fmt.Sprintf("vblk%d-byte%d=ff", k+1, off), func(im *Image) { im.Put(v+off, []byte{0xff}) })
		}
	}
	for _, c := range []int64{configStart, configStart + 3*sector, vmdbs[0] + 100, vblks[len(vblks)/2]} {
		cases = append(cases, one(fmt.Sprintf("%s/truncate@%d", name, c), disk.Truncated(c)))
	}
	return cases, nil
}
