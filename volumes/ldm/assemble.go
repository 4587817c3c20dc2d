package ldm

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// Extent is one partition of a volume on one disk.
type Extent struct {
	Disk   int    // index into the disks given to Assemble; -1 when the disk is absent
	Name   string // LDM partition name, e.g. "Disk1-01"
	Offset int64  // bytes from the disk start
	Size   int64
	Role   string
}

// Volume is an assembled LDM volume.
type Volume struct {
	Name     string
	GUID     string
	Layout   string // simple, spanned, striped, mirrored, raid5
	Hint     string
	Size     int64 // bytes
	PartType byte
	Chunk    int64 // bytes, for striped and raid5
	Extents  []Extent
	Dev      layout.Dev // nil when Err is set
	Err      error
}

// Group is an assembled disk group.
type Group struct {
	Name         string
	GUID         string
	Committed    uint64
	Volumes      []*Volume
	MissingDisks []string // disk names in the database with no disk in the set
}

// Assemble groups disks by disk-group GUID, takes the database copy with the highest committed
// sequence, and maps every volume. Problems reports disks whose copy is older than the group's.
func Assemble(disks []*Disk) ([]*Group, []string) {
	var problems []string
	var order []string
	best := map[string]*Disk{}
	for _, d := range disks {
		b, ok := best[d.GroupGUID]
		if !ok {
			order = append(order, d.GroupGUID)
		}
		if !ok || d.DB.Committed > b.DB.Committed {
			best[d.GroupGUID] = d
		}
	}
	var groups []*Group
	for _, guid := range order {
		db := best[guid].DB
		for _, d := range disks {
			if d.GroupGUID == guid && d.DB.Committed != db.Committed {
				problems = append(problems, fmt.Sprintf("disk group %s: disk %s holds database sequence %d, newest is %d", db.GroupName, d.DiskGUID, d.DB.Committed, db.Committed))
			}
		}
		groups = append(groups, assembleGroup(guid, db, disks))
	}
	return groups, problems
}

func assembleGroup(guid string, db *DB, disks []*Disk) *Group {
	g := &Group{Name: db.GroupName, GUID: guid, Committed: db.Committed}
	present := map[uint32]int{} // disk record id -> index in disks
	for _, rec := range db.Disks {
		found := false
		for i, d := range disks {
			if d.GroupGUID == guid && strings.EqualFold(d.DiskGUID, rec.GUID) {
				present[rec.ID], found = i, true
				break
			}
		}
		if !found {
			g.MissingDisks = append(g.MissingDisks, rec.Name)
		}
	}
	for _, v := range db.Volumes {
		g.Volumes = append(g.Volumes, assembleVolume(v, db, disks, present))
	}
	return g
}

func assembleVolume(v *VolumeRec, db *DB, disks []*Disk, present map[uint32]int) *Volume {
	vol := &Volume{Name: v.Name, GUID: formatGUID(v.GUID[:]), Hint: v.Hint, PartType: v.PartType}
	if v.Size > uint64(1<<62)/sector {
		vol.Err = fmt.Errorf("size of %d sectors", v.Size)
		return vol
	}
	vol.Size = int64(v.Size) * sector
	var comps []*ComponentRec
	for _, c := range db.Components {
		if c.Parent == v.ID {
			comps = append(comps, c)
		}
	}
	if len(comps) == 0 || uint32(len(comps)) != v.NComps {
		vol.Err = fmt.Errorf("volume has %d components, its record says %d", len(comps), v.NComps)
		return vol
	}
	// The extents of every component, for listing even when assembly fails.
	members := make([][]*PartitionRec, len(comps))
	for i, c := range comps {
		for _, p := range db.Partitions {
			if p.Parent == c.ID {
				members[i] = append(members[i], p)
			}
		}
		if uint32(len(members[i])) != c.NParts || len(members[i]) == 0 {
			vol.Err = fmt.Errorf("component %s has %d partitions, its record says %d", c.Name, len(members[i]), c.NParts)
			return vol
		}
		for _, p := range members[i] {
			if !hasDisk(db, p.DiskID) {
				vol.Err = fmt.Errorf("partition %s names disk id %d, which is not in the database", p.Name, p.DiskID)
				return vol
			}
		}
	}
	var err error
	switch {
	case comps[0].Type == CompSpanned && v.IntType == 3:
		vol.Layout = "simple"
		if len(comps) > 1 {
			vol.Layout = "mirrored"
		} else if len(members[0]) > 1 {
			vol.Layout = "spanned"
		}
		vol.Dev, err = vol.mirrorOrSpan(members, disks, present)
	case comps[0].Type == CompStriped && v.IntType == 3 && len(comps) == 1:
		vol.Layout = "striped"
		vol.Dev, err = vol.columns(comps[0], members[0], disks, present, false)
	case comps[0].Type == CompRAID5 && v.IntType == 4 && len(comps) == 1:
		vol.Layout = "raid5"
		vol.Dev, err = vol.columns(comps[0], members[0], disks, present, true)
	default:
		err = fmt.Errorf("component type %d under a volume of type %d (%d components) is not a known layout", comps[0].Type, v.IntType, len(comps))
	}
	if err != nil {
		vol.Dev, vol.Err = nil, err
	}
	return vol
}

func hasDisk(db *DB, id uint32) bool {
	for _, d := range db.Disks {
		if d.ID == id {
			return true
		}
	}
	return false
}

// part maps one partition record, recording its extent; a nil device means its disk is absent.
func (vol *Volume) part(p *PartitionRec, disks []*Disk, present map[uint32]int, role string) (layout.Dev, error) {
	i, ok := present[p.DiskID]
	ext := Extent{Disk: -1, Name: p.Name, Size: int64(p.Size) * sector, Role: role}
	if !ok {
		vol.Extents = append(vol.Extents, ext)
		return nil, nil
	}
	d := disks[i]
	if p.Size > d.DataSize || p.Start > d.DataSize-p.Size {
		return nil, fmt.Errorf("partition %s (%d+%d sectors) lies outside the disk's data area of %d sectors", p.Name, p.Start, p.Size, d.DataSize)
	}
	ext.Disk, ext.Offset = i, int64(d.DataStart+p.Start)*sector
	vol.Extents = append(vol.Extents, ext)
	return layout.Slice(d.dev, ext.Offset, ext.Size)
}

// mirrorOrSpan concatenates each component's partitions in volume-offset order; with several
// components (a mirror) the first complete one is used.
func (vol *Volume) mirrorOrSpan(members [][]*PartitionRec, disks []*Disk, present map[uint32]int) (layout.Dev, error) {
	var chosen layout.Dev
	var why []string
	for ci, parts := range members {
		sort.Slice(parts, func(a, b int) bool { return parts[a].VolOffset < parts[b].VolOffset })
		var devs []layout.Dev
		var next uint64
		complete := true
		for _, p := range parts {
			if p.VolOffset != next {
				return nil, fmt.Errorf("partition %s starts at volume sector %d, expected %d", p.Name, p.VolOffset, next)
			}
			next += p.Size
			role := "span"
			if len(members) > 1 {
				role = fmt.Sprintf("mirror %d", ci)
			}
			d, err := vol.part(p, disks, present, role)
			if err != nil {
				return nil, err
			}
			if d == nil {
				complete = false
				why = append(why, fmt.Sprintf("partition %s: its disk is not in the set", p.Name))
			}
			devs = append(devs, d)
		}
		if next*sector < uint64(vol.Size) {
			return nil, fmt.Errorf("partitions cover %d sectors of a %d-sector volume", next, vol.Size/sector)
		}
		if complete && chosen == nil {
			c := layout.Concat(devs)
			var err error
			if chosen, err = layout.Slice(c, 0, vol.Size); err != nil {
				return nil, err
			}
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("%w: %s", layout.ErrMissing, strings.Join(why, "; "))
	}
	return chosen, nil
}

// columns builds a striped or RAID-5 volume from partitions ordered by column index.
func (vol *Volume) columns(c *ComponentRec, parts []*PartitionRec, disks []*Disk, present map[uint32]int, raid5 bool) (layout.Dev, error) {
	sort.Slice(parts, func(a, b int) bool { return parts[a].Index < parts[b].Index })
	if c.Chunk == 0 || c.Chunk > 1<<20 {
		return nil, fmt.Errorf("component %s: chunk of %d sectors", c.Name, c.Chunk)
	}
	if c.NColumns != 0 && int(c.NColumns) != len(parts) {
		return nil, fmt.Errorf("component %s: %d columns but %d partitions", c.Name, c.NColumns, len(parts))
	}
	vol.Chunk = int64(c.Chunk) * sector
	cols := make([]layout.Dev, len(parts))
	var missing []string
	for i, p := range parts {
		if int(p.Index) != i {
			return nil, fmt.Errorf("component %s: column indexes are not 0..%d", c.Name, len(parts)-1)
		}
		d, err := vol.part(p, disks, present, fmt.Sprintf("column %d", i))
		if err != nil {
			return nil, err
		}
		if d == nil {
			missing = append(missing, p.Name)
		}
		cols[i] = d
	}
	if raid5 {
		if len(missing) > 1 {
			return nil, fmt.Errorf("%w: RAID-5 members %s are not in the set", layout.ErrMissing, strings.Join(missing, ", "))
		}
		return layout.RAID5(cols, vol.Chunk, vol.Size)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: striped members %s are not in the set", layout.ErrMissing, strings.Join(missing, ", "))
	}
	return layout.Stripe(cols, vol.Chunk, vol.Size)
}
