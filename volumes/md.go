package volumes

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/gpt"
	"github.com/vmdkmount/vmdkmount/volumes/layout"
	"github.com/vmdkmount/vmdkmount/volumes/mbr"
	"github.com/vmdkmount/vmdkmount/volumes/md"
)

// MDInfo describes a Linux software RAID (md) array.
type MDInfo struct {
	UUID     string // array UUID as mdadm prints it
	Name     string // v1 array name ("host:name"); "" for metadata 0.90
	Metadata string // "0.90", "1.0", "1.1", "1.2"
	Level    string // "raid5", "linear", …
	Layout   string // "left-symmetric", "near=2", … ("" where the level has none)
	Chunk    int64  // bytes
	Members  int    // slots of the array
	Missing  []int  // slots with no member in the set
	Degraded bool   // readable although members are missing
}

// assembleMD reads the superblock of every md member in the set, assembles the arrays by UUID and adds
// each as a volume, probed again for what it holds. Members become containers.
func (s *Set) assembleMD() {
	var members []md.Member
	var holders []*Volume
	for _, v := range s.all {
		if v.Filesystem.Type != "linux_raid_member" || v.dev == nil || v.Container {
			continue
		}
		sb, err := md.Read(v.dev, v.Size())
		if err != nil {
			s.problemf("%s: md superblock unusable: %v", v.ID, err)
			continue
		}
		members = append(members, md.Member{SB: sb, Dev: v.dev})
		holders = append(holders, v)
	}
	if len(members) == 0 {
		return
	}
	arrays, problems := md.Assemble(members)
	for _, p := range problems {
		s.problemf("%s", p)
	}
	for _, a := range arrays {
		sb := a.SB
		v := &Volume{ID: mdID(sb), Kind: KindMD, Disk: -1, size: a.Size,
			MD: &MDInfo{UUID: sb.UUIDString(), Name: sb.Name, Metadata: sb.Version, Level: md.LevelName(sb.Level),
				Chunk: sb.Chunk, Members: sb.RaidDisks, Missing: a.Missing, Degraded: a.Degraded()}}
		if sb.Level >= 4 {
			v.MD.Layout = md.LayoutName(sb.Level, sb.Layout)
		}
		for slot, i := range a.Roles {
			if i < 0 {
				continue
			}
			h, m := holders[i], members[i].SB
			v.Extents = append(v.Extents, Extent{Disk: h.Disk, Offset: h.Offset + m.DataOffset, Size: m.DataSize, Role: "slot " + strconv.Itoa(slot)})
			h.Container = true
		}
		for _, i := range a.Unused {
			holders[i].Container = true
		}
		switch {
		case a.Err != nil:
			v.Incomplete, v.Reason = true, fmt.Sprintf("md %s (%s): %v", v.ID, md.LevelName(sb.Level), a.Err)
		default:
			if a.Degraded() {
				s.problemf("md %s: degraded, slots %v missing; read from the remaining members", v.ID, a.Missing)
			}
			v.dev = a.Dev
			v.Filesystem = detect(a.Dev)
		}
		s.all = append(s.all, v)
		if v.dev != nil && v.Filesystem.Type == "" {
			s.innerPartitions(v)
		}
	}
}

// mdID names an array as mdadm's /dev/md/ entries do: md<N> for a numbered one (0.90's preferred minor,
// or a v1 name such as "host:0"), md-<name> otherwise.
func mdID(sb *md.Superblock) string {
	if sb.Version == "0.90" {
		return "md" + strconv.Itoa(sb.Minor)
	}
	name := sb.ShortName()
	if _, err := strconv.Atoi(name); err == nil {
		return "md" + name
	}
	if name == "" {
		return "md-" + sb.UUIDString()[:8]
	}
	// The name becomes a directory of the mount: no separators or NULs.
	return "md-" + strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
}

// innerPartitions adds the partitions of a table inside an assembled array (md arrays are partitionable,
// Linux shows them as md0p1…); the array becomes their container.
func (s *Set) innerPartitions(v *Volume) {
	size := v.dev.Size()
	var infos []*PartitionInfo
	if mt, ss, err := readMBR(v.dev, size, sectorSizes(Options{})); err == nil && !mt.Protective {
		for _, p := range mt.Partitions {
			if !p.Extended {
				infos = append(infos, &PartitionInfo{Scheme: "mbr", Number: p.Number, SectorSize: ss, StartLBA: p.Start, Sectors: p.Sectors,
					TypeID: p.Type, Active: p.Active, Logical: p.Logical, TypeName: mbr.TypeName(p.Type)})
			}
		}
	} else {
		for _, ss := range sectorSizes(Options{}) {
			gt, err := gpt.Read(v.dev, ss, size)
			if err != nil {
				continue
			}
			for _, p := range gt.Partitions {
				infos = append(infos, &PartitionInfo{Scheme: "gpt", Number: p.Number, SectorSize: ss, StartLBA: p.FirstLBA,
					Sectors: p.LastLBA - p.FirstLBA + 1, TypeGUID: p.Type.String(), UniqueGUID: p.Unique.String(),
					Name: p.Name, Attributes: p.Attributes, TypeName: gpt.TypeName(p.Type)})
			}
			break
		}
	}
	for _, info := range infos {
		off, length := int64(info.StartLBA)*int64(info.SectorSize), int64(info.Sectors)*int64(info.SectorSize)
		p := &Volume{ID: fmt.Sprintf("%sp%d", v.ID, info.Number), Kind: KindPartition, Disk: -1, Offset: off, size: length, Partition: info}
		if dev, err := layout.Slice(v.dev, off, length); err != nil {
			p.Incomplete, p.Reason = true, err.Error()
		} else {
			p.dev = dev
			p.Filesystem = detect(dev)
		}
		s.all = append(s.all, p)
		v.Container = true
	}
}
