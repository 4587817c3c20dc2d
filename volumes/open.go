package volumes

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/vmdkmount/vmdkmount/volumes/gpt"
	"github.com/vmdkmount/vmdkmount/volumes/layout"
	"github.com/vmdkmount/vmdkmount/volumes/mbr"
	"github.com/vmdkmount/vmdkmount/volumes/probe"
)

// Open scans every disk of the set for partition tables, then assembles LVM2 volume groups and LDM disk
// groups across the whole set. Damage that spoils one entry is reported in Problems; only unreadable
// input (no disks, a disk that cannot be read at all) is an error.
func Open(disks []Disk, opts Options) (*Set, error) {
	if len(disks) == 0 {
		return nil, errors.New("volumes: no disks")
	}
	if opts.SectorSize != 0 && opts.SectorSize != 512 && opts.SectorSize != 4096 {
		return nil, fmt.Errorf("volumes: sector size %d is neither 512 nor 4096", opts.SectorSize)
	}
	s := &Set{disks: disks}
	for i, d := range disks {
		if d == nil || d.Size() < 0 {
			return nil, fmt.Errorf("volumes: disk %d is missing", i)
		}
		if err := s.scanDisk(i, d, opts); err != nil {
			return nil, fmt.Errorf("volumes: disk %d: %w", i, err)
		}
	}
	s.assembleMD()
	s.assembleLDM()
	s.assembleLVM()
	s.assembleBtrfs()
	s.uniqueIDs()
	for _, v := range s.all {
		v.noReplay = opts.NoReplay
	}
	for _, p := range s.problems {
		slog.Debug("volumes: problem", "problem", p)
	}
	return s, nil
}

func (s *Set) problemf(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

// diskPrefix is "" for a single disk and "d<i>" in a set of several.
func (s *Set) diskPrefix(i int) string {
	if len(s.disks) == 1 {
		return ""
	}
	return fmt.Sprintf("d%d", i)
}

func (s *Set) scanDisk(i int, d Disk, opts Options) error {
	size := d.Size()
	if size < 512 {
		s.problemf("disk %d: %d bytes is too small for any table", i, size)
		s.addWholeDisk(i, d)
		return nil
	}
	sector0 := make([]byte, 512)
	if n, err := d.ReadAt(sector0, 0); n != 512 {
		return fmt.Errorf("read sector 0: %w", err)
	}
	mt, mbrSS, merr := readMBR(d, size, sectorSizes(opts))
	// Like Linux: a GPT counts when the MBR is protective or hybrid (an 0xEE entry). A GPT with no MBR at
	// all is still taken (the MBR sector may be wiped); a real MBR without 0xEE wins over a stale GPT.
	if merr == nil && !mt.Protective {
		s.addMBR(i, d, mt, mbrSS)
		return nil
	}
	sizes := sectorSizes(opts)
	var gerrs []error
	for _, ss := range sizes {
		gt, err := gpt.Read(d, ss, size)
		if err == nil {
			if merr != nil {
				s.problemf("disk %d: GPT found without a protective MBR (%v)", i, merr)
			}
			s.addGPT(i, d, gt)
			return nil
		}
		gerrs = append(gerrs, fmt.Errorf("%d-byte sectors: %w", ss, err))
	}
	if merr == nil {
		s.problemf("disk %d: the MBR has a GPT protective entry but no valid GPT was found (%v); no partitions", i, errors.Join(gerrs...))
		return nil
	}
	s.addWholeDisk(i, d)
	return nil
}

func (s *Set) addWholeDisk(i int, d Disk) {
	id := "disk"
	if len(s.disks) > 1 {
		id = fmt.Sprintf("d%d", i)
	}
	v := &Volume{ID: id, Kind: KindWholeDisk, Disk: i, size: d.Size(), dev: d,
		Extents: []Extent{{Disk: i, Offset: 0, Size: d.Size()}}}
	v.Filesystem = detect(d)
	s.all = append(s.all, v)
}

func detect(d layout.Dev) Filesystem {
	r := probe.Detect(d, d.Size())
	return Filesystem(r)
}

// partition adds a partition volume of [start, start+length) bytes on disk i.
func (s *Set) partition(i int, d Disk, info *PartitionInfo) *Volume {
	off := int64(info.StartLBA) * int64(info.SectorSize)
	length := int64(info.Sectors) * int64(info.SectorSize)
	v := &Volume{ID: fmt.Sprintf("%sp%d", s.diskPrefix(i), info.Number), Kind: KindPartition, Disk: i, Offset: off,
		size: length, Partition: info, Extents: []Extent{{Disk: i, Offset: off, Size: length}}}
	dev, err := layout.Slice(d, off, length)
	if err != nil {
		v.Incomplete, v.Reason = true, err.Error()
	} else {
		v.dev = dev
		v.Filesystem = detect(dev)
	}
	s.all = append(s.all, v)
	return v
}

func (s *Set) addMBR(i int, d Disk, t *mbr.Table, ss int) {
	for _, p := range t.Problems {
		s.problemf("disk %d: MBR: %s", i, p)
	}
	for _, p := range t.Partitions {
		info := &PartitionInfo{Scheme: "mbr", Number: p.Number, SectorSize: ss, StartLBA: p.Start, Sectors: p.Sectors,
			TypeID: p.Type, Active: p.Active, Logical: p.Logical, TypeName: mbr.TypeName(p.Type)}
		if p.Extended {
			// The container itself is listed only in All(): its contents are the logical partitions.
			v := s.partition(i, d, info)
			v.Container = true
			v.Filesystem = Filesystem{}
			continue
		}
		v := s.partition(i, d, info)
		if p.Type == 0x42 {
			s.noteLDM(i, d, v, ldmOnMBR)
		}
	}
}

func (s *Set) addGPT(i int, d Disk, t *gpt.Table) {
	if t.FromBackup {
		s.problemf("disk %d: primary GPT header unusable (%v); using the backup", i, t.PrimaryError)
	}
	for _, p := range t.Problems {
		s.problemf("disk %d: GPT: %s", i, p)
	}
	for _, p := range t.Partitions {
		info := &PartitionInfo{Scheme: "gpt", Number: p.Number, SectorSize: t.SectorSize, StartLBA: p.FirstLBA,
			Sectors: p.LastLBA - p.FirstLBA + 1, TypeGUID: p.Type.String(), UniqueGUID: p.Unique.String(),
			Name: p.Name, Attributes: p.Attributes, FromBackup: t.FromBackup, TypeName: gpt.TypeName(p.Type)}
		v := s.partition(i, d, info)
		switch info.TypeGUID {
		case gpt.TypeLDMMetadata:
			s.noteLDM(i, d, v, ldmGPTMetadata)
		case gpt.TypeLDMData:
			s.noteLDM(i, d, v, ldmGPTData)
		}
	}
}

// uniqueIDs keeps IDs unique when two groups use the same names (e.g. cloned VGs): later ones get
// a "#2", "#3" suffix, and the clash is reported.
func (s *Set) uniqueIDs() {
	seen := map[string]int{}
	for _, v := range s.all {
		seen[v.ID]++
		if n := seen[v.ID]; n > 1 {
			s.problemf("two volumes are called %s; the later one is %s#%d", v.ID, v.ID, n)
			v.ID = fmt.Sprintf("%s#%d", v.ID, n)
		}
	}
}
