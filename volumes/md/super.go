// Package md reads Linux software RAID (md) member superblocks — metadata 0.90, 1.0, 1.1 and 1.2 — and
// assembles the arrays they describe into readable devices: linear, RAID 0, 1, 4, 5, 6 and 10, degraded
// where the level allows.
package md

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Magic opens every md superblock.
const Magic = 0xa92b4efc

// ErrNoSuperblock means no md superblock sits at any of the places md puts one.
var ErrNoSuperblock = errors.New("no md superblock")

// Role values of a member that holds no data slot.
const (
	RoleSpare   = -1
	RoleFaulty  = -2
	RoleJournal = -3
)

// Level values that are not plain numbers.
const LevelLinear = -1

// Superblock is what one member says about itself and its array.
type Superblock struct {
	Version    string   // "0.90", "1.0", "1.1" or "1.2"
	Offset     int64    // byte offset of the superblock in the member
	UUID       [16]byte // array UUID, in the order mdadm prints it
	Name       string   // v1 set name ("host:name"); "" for 0.90
	Minor      int      // 0.90 preferred minor
	Level      int      // LevelLinear, 0, 1, 4, 5, 6, 10
	Layout     uint32
	Chunk      int64 // bytes; 0 for levels without chunks
	RaidDisks  int
	DevSize    int64 // bytes of each member used by the array (0: the whole data area)
	DataOffset int64 // bytes from the member's start to its data
	DataSize   int64 // bytes of data area on this member
	Role       int   // slot in the array, or RoleSpare/RoleFaulty/RoleJournal
	Events     uint64
	DevUUID    [16]byte // v1 only
	Features   uint32   // v1 feature map
	ReshapeNew bool     // a reshape is under way: the layout is half old, half new
}

// v1 superblock facts.
const (
	v1Size          = 256  // fixed part; then two bytes per device role
	v1MaxDev        = 1920 // roles that fit in the 4 KiB md reads
	featureReshape  = 4
	featureJournal  = 512
	sb090Bytes      = 4096
	sb090Reserved   = 64 << 10
	sb090Disks      = 27
	sb090DescWords  = 32
	sb090ThisDisk   = 992 // word offset of this device's descriptor
	sb090DisksStart = 128 // word offset of the descriptor table
)

// Locations lists where each metadata version keeps its superblock in a member of size bytes.
func Locations(size int64) []struct {
	Version string
	Offset  int64
} {
	locs := []struct {
		Version string
		Offset  int64
	}{{"1.2", 4096}, {"1.1", 0}}
	if size >= 8192 {
		locs = append(locs, struct {
			Version string
			Offset  int64
		}{"1.0", (size - 8192) &^ 4095})
	}
	if size >= 2*sb090Reserved {
		locs = append(locs, struct {
			Version string
			Offset  int64
		}{"0.90", size&^(sb090Reserved-1) - sb090Reserved})
	}
	return locs
}

// Read finds and checks the md superblock of a member of size bytes. A block with the magic but a bad
// checksum or impossible fields is an error naming the problem, not ErrNoSuperblock.
func Read(r io.ReaderAt, size int64) (*Superblock, error) {
	var firstErr error
	for _, loc := range Locations(size) {
		b := make([]byte, 4096)
		if loc.Offset+int64(len(b)) > size {
			continue
		}
		if n, _ := r.ReadAt(b, loc.Offset); n != len(b) {
			continue
		}
		if binary.LittleEndian.Uint32(b) != Magic {
			continue
		}
		var sb *Superblock
		var err error
		major := binary.LittleEndian.Uint32(b[4:])
		switch {
		case loc.Version == "0.90" && major == 0:
			sb, err = parse090(b)
			if err == nil {
				sb.Offset, sb.DataSize = loc.Offset, loc.Offset // data runs from 0 up to the superblock
			}
		case loc.Version != "0.90" && major == 1:
			sb, err = parse1(b, loc.Offset, size)
			if err == nil && sb.Version != loc.Version {
				err = fmt.Errorf("superblock at byte %d says it is at sector %d", loc.Offset, sb.Offset/512)
			}
		default:
			err = fmt.Errorf("major version %d at byte %d", major, loc.Offset)
		}
		if err == nil {
			return sb, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("md %s superblock: %w", loc.Version, err)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, ErrNoSuperblock
}

// csum folds the sum of the little-endian 32-bit words of b (an odd 16-bit tail added) the way md does.
func csum(b []byte) uint32 {
	var s uint64
	i := 0
	for ; i+4 <= len(b); i += 4 {
		s += uint64(binary.LittleEndian.Uint32(b[i:]))
	}
	if i+2 <= len(b) {
		s += uint64(binary.LittleEndian.Uint16(b[i:]))
	}
	return uint32(s&0xffffffff) + uint32(s>>32)
}

// Checksum090 is the 0.90 checksum of a 4096-byte superblock (its sb_csum word counted as zero).
func Checksum090(b []byte) uint32 {
	return csumWithout(b[:sb090Bytes], 38*4)
}

// Checksum1 is the v1 checksum of a superblock with maxDev roles (its sb_csum counted as zero). The
// roles past the 4 KiB md reads are not summed.
func Checksum1(b []byte, maxDev int) uint32 {
	n := v1Size + 2*min(maxDev, v1MaxDev)
	return csumWithout(b[:min(n, len(b))], 216)
}

// csumWithout is csum(b) with the 32-bit word at at counted as zero.
func csumWithout(b []byte, at int) uint32 {
	c := make([]byte, len(b)) // at most 4 KiB
	copy(c, b)
	binary.LittleEndian.PutUint32(c[at:], 0)
	return csum(c)
}

func parse090(b []byte) (*Superblock, error) {
	w := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	if minor := w(2); minor != 90 {
		return nil, fmt.Errorf("version 0.%d is not 0.90", minor)
	}
	if got, want := w(38), Checksum090(b); got != want {
		return nil, fmt.Errorf("checksum %#08x, computed %#08x", got, want)
	}
	sb := &Superblock{Version: "0.90", Level: int(int32(w(7))), Layout: w(64), Chunk: int64(w(65)),
		RaidDisks: int(w(10)), DevSize: int64(w(8)) * 1024, Minor: int(w(11)),
		Events: uint64(w(40))<<32 | uint64(w(39))}
	for i, word := range []int{5, 13, 14, 15} {
		binary.BigEndian.PutUint32(sb.UUID[4*i:], w(word))
	}
	desc := sb090ThisDisk
	state := w(desc + 4)
	switch {
	case state&1 != 0: // faulty
		sb.Role = RoleFaulty
	case state&(1<<2) == 0 || int(w(desc+3)) >= sb.RaidDisks: // not in sync: a spare
		sb.Role = RoleSpare
	default:
		sb.Role = int(w(desc + 3))
	}
	if sb.RaidDisks < 1 || sb.RaidDisks > sb090Disks {
		return nil, fmt.Errorf("%d raid disks (0.90 holds at most %d)", sb.RaidDisks, sb090Disks)
	}
	return sb, sb.check()
}

func parse1(b []byte, at, size int64) (*Superblock, error) {
	le32 := func(o int) uint32 { return binary.LittleEndian.Uint32(b[o:]) }
	le64 := func(o int) uint64 { return binary.LittleEndian.Uint64(b[o:]) }
	maxDev := int(le32(220))
	if maxDev > v1MaxDev {
		return nil, fmt.Errorf("max_dev %d exceeds %d", maxDev, v1MaxDev)
	}
	if got, want := le32(216), Checksum1(b, maxDev); got != want {
		return nil, fmt.Errorf("checksum %#08x, computed %#08x", got, want)
	}
	sb := &Superblock{Level: int(int32(le32(72))), Layout: le32(76), Chunk: int64(le32(88)) * 512,
		RaidDisks: int(le32(92)), Features: le32(8), Events: le64(200)}
	copy(sb.UUID[:], b[16:32])
	copy(sb.DevUUID[:], b[168:184])
	sb.Name = strings.TrimRight(string(b[32:64]), "\x00")
	if i := strings.IndexByte(sb.Name, 0); i >= 0 {
		sb.Name = sb.Name[:i]
	}
	const maxSectors = 1 << 54 // keeps byte counts inside int64
	sizeS, dataOff, dataSize, superOff := le64(80), le64(128), le64(136), le64(144)
	if sizeS > maxSectors || dataOff > maxSectors || dataSize > maxSectors || superOff > maxSectors {
		return nil, errors.New("sector counts past 2^54")
	}
	sb.DevSize, sb.DataOffset, sb.DataSize, sb.Offset = int64(sizeS)*512, int64(dataOff)*512, int64(dataSize)*512, int64(superOff)*512
	switch sb.Offset {
	case 0:
		sb.Version = "1.1"
	case 4096:
		sb.Version = "1.2"
	default:
		sb.Version = "1.0"
	}
	if sb.Offset != at {
		return nil, fmt.Errorf("super_offset sector %d, found at byte %d", superOff, at)
	}
	if sb.DataOffset+sb.DataSize > size {
		return nil, fmt.Errorf("data area [%d, +%d) runs past the %d-byte member", sb.DataOffset, sb.DataSize, size)
	}
	sb.ReshapeNew = sb.Features&featureReshape != 0
	devNumber := int(le32(160))
	role := 0xffff
	if devNumber < maxDev {
		role = int(binary.LittleEndian.Uint16(b[v1Size+2*devNumber:]))
	}
	switch {
	case role == 0xffff:
		sb.Role = RoleSpare
	case role == 0xfffe:
		sb.Role = RoleFaulty
	case role == 0xfffd:
		sb.Role = RoleJournal
	case role >= sb.RaidDisks:
		sb.Role = RoleSpare
	default:
		sb.Role = role
	}
	if sb.RaidDisks < 1 || sb.RaidDisks > v1MaxDev {
		return nil, fmt.Errorf("%d raid disks", sb.RaidDisks)
	}
	return sb, sb.check()
}

// check refuses fields no array has: they would make geometry divide by zero or overflow.
func (sb *Superblock) check() error {
	if sb.Chunk < 0 || sb.Chunk > 1<<30 || (sb.Chunk != 0 && sb.Chunk%512 != 0) {
		return fmt.Errorf("chunk size %d", sb.Chunk)
	}
	if sb.DevSize < 0 || sb.DevSize > 1<<62 {
		return fmt.Errorf("device size %d", sb.DevSize)
	}
	return nil
}

// UUIDString is the array UUID as mdadm prints it: four groups of eight hex digits.
func (sb *Superblock) UUIDString() string {
	u := sb.UUID
	return fmt.Sprintf("%x:%x:%x:%x", u[0:4], u[4:8], u[8:12], u[12:16])
}

// LevelName names the level as mdadm does ("raid5", "linear").
func LevelName(level int) string {
	switch level {
	case LevelLinear:
		return "linear"
	case -4:
		return "multipath"
	case -5:
		return "faulty"
	case -6:
		return "container"
	}
	return fmt.Sprintf("raid%d", level)
}

// ShortName is the array's name without its "host:" prefix ("" when it has none).
func (sb *Superblock) ShortName() string {
	if i := strings.LastIndexByte(sb.Name, ':'); i >= 0 {
		return sb.Name[i+1:]
	}
	return sb.Name
}
