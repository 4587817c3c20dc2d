package volumes

import (
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/ldm"
)

// ldmRole says which LDM piece a partition is.
type ldmRole int

const (
	ldmOnMBR       ldmRole = iota // an MBR type 0x42 partition: PRIVHEAD in disk sector 6
	ldmGPTMetadata                // GPT "LDM metadata": PRIVHEAD in its last sector
	ldmGPTData                    // GPT "LDM data": volumes live here
)

type ldmCandidate struct {
	disk int
	d    Disk
	v    *Volume
	role ldmRole
}

func (s *Set) noteLDM(i int, d Disk, v *Volume, role ldmRole) {
	s.ldm = append(s.ldm, ldmCandidate{disk: i, d: d, v: v, role: role})
}

// assembleLDM reads the LDM database of every dynamic disk in the set and adds the volumes of their
// disk groups. Volumes whose disks are absent are listed as incomplete.
func (s *Set) assembleLDM() {
	var disks []*ldm.Disk
	var diskIndex []int
	read := map[int]bool{}
	for _, c := range s.ldm {
		if c.role == ldmGPTData || read[c.disk] {
			continue
		}
		at := int64(6 * 512)
		if c.role == ldmGPTMetadata {
			p := c.v.Partition
			at = int64(p.StartLBA+p.Sectors-1) * int64(p.SectorSize)
		}
		d, err := ldm.ReadDisk(c.d, at)
		if err != nil {
			s.problemf("disk %d: LDM metadata unusable: %v", c.disk, err)
			continue
		}
		read[c.disk] = true
		disks = append(disks, d)
		diskIndex = append(diskIndex, c.disk)
	}
	// The LDM partitions of a readable dynamic disk are containers now.
	for _, c := range s.ldm {
		if read[c.disk] {
			c.v.Container = true
		}
	}
	if len(disks) == 0 {
		return
	}
	groups, problems := ldm.Assemble(disks)
	for _, p := range problems {
		s.problemf("LDM: %s", p)
	}
	names := map[string]int{}
	for _, g := range groups {
		for _, v := range g.Volumes {
			names[v.Name]++
		}
	}
	for _, g := range groups {
		for _, name := range g.MissingDisks {
			s.problemf("LDM: disk group %s: disk %s is not in the disk set", g.Name, name)
		}
		for _, lv := range g.Volumes {
			id := lv.Name
			if names[id] > 1 { // the same name in two groups of one set
				id = g.Name + "-" + lv.Name
			}
			v := &Volume{ID: id, Kind: KindLDM, Disk: -1, size: lv.Size,
				LDM: &LDMInfo{Group: g.Name, GroupGUID: g.GUID, Name: lv.Name, Layout: lv.Layout, DriveHint: lv.Hint, GUID: lv.GUID}}
			for _, e := range lv.Extents {
				disk := -1
				if e.Disk >= 0 {
					disk = diskIndex[e.Disk]
				}
				v.Extents = append(v.Extents, Extent{Disk: disk, Offset: e.Offset, Size: e.Size, Role: e.Role + " " + e.Name})
			}
			if lv.Err != nil {
				v.Incomplete, v.Reason = true, fmt.Sprintf("LDM %s/%s: %v", g.Name, lv.Name, lv.Err)
			} else {
				v.dev = lv.Dev
				v.Filesystem = detect(lv.Dev)
			}
			s.all = append(s.all, v)
		}
	}
}
