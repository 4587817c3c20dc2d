// Package volumes finds the volumes in a set of disks, as VMware's VixMntapi does: partitions of MBR
// (with the EBR chain) and GPT tables, LVM2 logical volumes and Windows LDM (dynamic disk) volumes,
// possibly spread over several disks of the set, and unpartitioned disks that hold a filesystem. Each
// volume reads as an io.ReaderAt that is safe for concurrent use, and carries the filesystem its
// signature names, with label and UUID where known.
package volumes

import (
	"errors"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// Disk is one disk of a set: positional reads and a size in bytes.
type Disk interface {
	io.ReaderAt
	Size() int64
}

// Options tune Open.
type Options struct {
	// SectorSize forces the logical sector size of every disk (512 or 4096). Zero probes 512 and 4096: a
	// GPT by its header, an MBR by the reading that fits the disk (entries inside it, EBRs found,
	// filesystems where partitions start), 512 when both fit alike.
	SectorSize int
	// NoReplay shows file trees as they lie on disk: a journal or log that needs recovery is not
	// replayed in memory (the default) and the volume's state says "dirty".
	NoReplay bool
}

// Kind says what a volume is.
type Kind string

// Volume kinds.
const (
	KindPartition Kind = "partition"  // an MBR or GPT partition
	KindWholeDisk Kind = "whole-disk" // a disk with no partition table
	KindLVM       Kind = "lvm"        // an LVM2 logical volume
	KindLDM       Kind = "ldm"        // a Windows dynamic-disk volume
	KindMD        Kind = "md"         // a Linux software RAID (md) array
)

// ErrIncomplete is returned (wrapped) by reads of a volume that could not be assembled.
var ErrIncomplete = errors.New("volume incomplete")

// Extent is one piece of a volume on one disk of the set.
type Extent struct {
	Disk   int    `json:"disk"`   // index into the disks given to Open
	Offset int64  `json:"offset"` // byte offset on that disk
	Size   int64  `json:"size"`   // bytes
	Role   string `json:"role,omitempty"`
}

// Filesystem is what the volume's first bytes say it holds.
type Filesystem struct {
	Type  string // "" when unrecognised; else e.g. "ntfs", "fat32", "ext4", "xfs", "LVM2_member"
	Label string
	UUID  string
}

// PartitionInfo describes a partition-table entry.
type PartitionInfo struct {
	Scheme     string `json:"scheme"` // "mbr" or "gpt"
	Number     int    `json:"number"` // Linux numbering: MBR primaries 1–4, logicals from 5; GPT entry index + 1
	SectorSize int    `json:"sector_size"`
	StartLBA   uint64 `json:"start_lba"`
	Sectors    uint64 `json:"sectors"`
	// MBR
	TypeID  byte `json:"type_id,omitempty"`
	Active  bool `json:"active,omitempty"`
	Logical bool `json:"logical,omitempty"`
	// GPT
	TypeGUID   string `json:"type_guid,omitempty"`
	UniqueGUID string `json:"unique_guid,omitempty"`
	Name       string `json:"name,omitempty"`
	Attributes uint64 `json:"attributes,omitempty"`
	FromBackup bool   `json:"from_backup,omitempty"` // the table came from the backup GPT header
	// TypeName names TypeID (MBR) or TypeGUID (GPT).
	TypeName string `json:"type_name,omitempty"`
}

// LVMInfo describes an LVM2 logical volume.
type LVMInfo struct {
	VG         string   `json:"vg"`
	LV         string   `json:"lv"`
	VGUUID     string   `json:"vg_uuid"`
	LVUUID     string   `json:"lv_uuid"`
	Segments   []string `json:"segments"`    // segment types in order, e.g. "striped", "raid1"
	ExtentSize int64    `json:"extent_size"` // bytes
}

// LDMInfo describes a Windows dynamic-disk volume.
type LDMInfo struct {
	Group     string `json:"group"` // disk group name
	GroupGUID string `json:"group_guid"`
	Name      string `json:"name"`                 // volume name, e.g. "Volume1"
	Layout    string `json:"layout"`               // "simple", "spanned", "striped", "mirrored", "raid5"
	DriveHint string `json:"drive_hint,omitempty"` // e.g. "E:"
	GUID      string `json:"guid"`
}

// Volume is one volume of a set.
type Volume struct {
	ID   string // p1, d1p2, <vg>-<lv>, LDM name, disk, d1
	Kind Kind
	// Disk is the disk index for partitions and whole disks, -1 for LVM, LDM and md volumes.
	Disk int
	// Offset is the byte offset on Disk for partitions and whole disks.
	Offset  int64
	Extents []Extent

	Partition *PartitionInfo
	LVM       *LVMInfo
	LDM       *LDMInfo
	MD        *MDInfo

	Filesystem Filesystem

	// Container is true for a partition or disk whose contents were taken over by LVM, LDM or md.
	Container bool
	// Incomplete volumes cannot be read; Reason says why (a member disk missing, an unsupported layout…).
	Incomplete bool
	Reason     string

	size     int64
	dev      layout.Dev
	noReplay bool
	// btrfsDevs are the devices of a multi-device Btrfs this volume stands for (itself included).
	btrfsDevs []layout.Dev
}

// Size is the volume size in bytes (the nominal size for an incomplete volume).
func (v *Volume) Size() int64 { return v.size }

// ReadAt reads the volume. It is safe for concurrent use.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	if v.dev == nil {
		return 0, fmt.Errorf("volume %s: %w: %s", v.ID, ErrIncomplete, v.Reason)
	}
	return v.dev.ReadAt(p, off)
}

// Set is the result of Open.
type Set struct {
	disks    []Disk
	all      []*Volume
	problems []string
	ldm      []ldmCandidate
}

// Volumes lists the volumes one would mount: partitions, whole disks, LVM and LDM volumes, including
// incomplete ones, but not the containers (PVs, LDM partitions, extended partitions) they came from.
func (s *Set) Volumes() []*Volume {
	var out []*Volume
	for _, v := range s.all {
		if !v.Container {
			out = append(out, v)
		}
	}
	return out
}

// All lists every volume including the containers that LVM and LDM took over.
func (s *Set) All() []*Volume { return s.all }

// Volume returns the volume with the given ID.
func (s *Set) Volume(id string) (*Volume, bool) {
	for _, v := range s.all {
		if v.ID == id {
			return v, true
		}
	}
	return nil, false
}

// Problems lists what was found damaged or ignored: bad table entries, EBR loops, stale metadata.
func (s *Set) Problems() []string { return s.problems }

// Disks returns the disks given to Open.
func (s *Set) Disks() []Disk { return s.disks }
