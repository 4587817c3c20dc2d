package volumes

import (
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/lvm"
)

// assembleLVM reads every volume labelled as an LVM2 PV and adds the logical volumes of their groups.
func (s *Set) assembleLVM() {
	var pvs []*lvm.PV
	var holders []*Volume
	for _, v := range s.all {
		if v.Filesystem.Type != "LVM2_member" || v.dev == nil || v.Container {
			continue
		}
		pv, err := lvm.ReadPV(v.dev)
		if err != nil {
			s.problemf("%s: LVM2 label unusable: %v", v.ID, err)
			continue
		}
		pvs = append(pvs, pv)
		holders = append(holders, v)
	}
	if len(pvs) == 0 {
		return
	}
	vgs, problems := lvm.Assemble(pvs)
	for _, p := range problems {
		s.problemf("LVM: %s", p)
	}
	for _, vg := range vgs {
		for _, id := range vg.MissingPVs {
			s.problemf("LVM: VG %s: PV %s is not in the disk set", vg.Name, id)
		}
		for _, lv := range vg.LVs {
			v := &Volume{ID: vg.Name + "-" + lv.Name, Kind: KindLVM, Disk: -1, size: lv.Size,
				LVM: &LVMInfo{VG: vg.Name, LV: lv.Name, VGUUID: vg.UUID, LVUUID: lv.UUID, Segments: lv.Segments, ExtentSize: vg.ExtentSize}}
			for _, e := range lv.Extents {
				h := holders[e.PV]
				v.Extents = append(v.Extents, Extent{Disk: h.Disk, Offset: h.Offset + e.Offset, Size: e.Size, Role: e.Role})
			}
			if lv.Err != nil {
				v.Incomplete, v.Reason = true, fmt.Sprintf("LVM %s/%s: %v", vg.Name, lv.Name, lv.Err)
			} else {
				v.dev = lv.Dev
				v.Filesystem = detect(lv.Dev)
			}
			s.all = append(s.all, v)
		}
	}
	// A PV whose group was assembled is a container now, even if no LV lies on it yet.
	inVG := map[string]bool{}
	for _, vg := range vgs {
		for _, id := range vg.PVs {
			inVG[id] = true
		}
	}
	for i, pv := range pvs {
		if inVG[pv.UUID] {
			holders[i].Container = true
			continue
		}
		s.problemf("%s: LVM2 PV %s belongs to no volume group found in the set (its metadata may be on a missing disk)", holders[i].ID, pv.UUID)
	}
}
