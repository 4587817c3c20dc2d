package exfat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// File attribute bits.
const (
	AttrReadOnly = 0x01
	AttrHidden   = 0x02
	AttrSystem   = 0x04
	AttrDir      = 0x10
	AttrArchive  = 0x20
)

// Directory entry types (InUse bit set).
const (
	typeEnd    = 0x00
	typeBitmap = 0x81
	typeUpcase = 0x82
	typeLabel  = 0x83
	typeFile   = 0x85
	typeStream = 0xC0
	typeName   = 0xC1
)

// Stream extension flags.
const (
	flagAllocPossible = 0x01
	flagNoFatChain    = 0x02
)

// dirent is one file entry set.
type dirent struct {
	name       string
	key        string // name through the up-case table, for case-insensitive lookup
	attr       uint16
	first      uint32
	dataLen    uint64
	validLen   uint64
	contiguous bool
	allocated  bool
	pos        int64 // volume byte offset of the 0x85 entry
	created    time.Time
	modified   time.Time
	accessed   time.Time
}

func (d *dirent) isDir() bool { return d.attr&AttrDir != 0 }

// exfatTime converts a timestamp as the Linux exfat driver does with tz=UTC: a valid UTC offset is
// subtracted; without one the stored wall clock is taken as UTC.
func exfatTime(ts uint32, cs byte, off byte) time.Time {
	t := time.Date(1980+int(ts>>25), time.Month(ts>>21&0x0F), int(ts>>16&0x1F),
		int(ts>>11&0x1F), int(ts>>5&0x3F), int(ts&0x1F)*2, 0, time.UTC)
	if cs != 0 {
		t = t.Add(time.Duration(cs/100)*time.Second + time.Duration(cs%100)*10*time.Millisecond)
	}
	if off&0x80 != 0 {
		q := int(int8(off<<1) >> 1) // 7-bit signed count of 15-minute steps
		t = t.Add(-time.Duration(q) * 15 * time.Minute)
	}
	return t
}

// setChecksum is the entry-set checksum over all entries, skipping the checksum field itself.
func setChecksum(set []byte) uint16 {
	var sum uint16
	for i, b := range set {
		if i == 2 || i == 3 {
			continue
		}
		sum = (sum>>1 | sum<<15) + uint16(b)
	}
	return sum
}

// special collects the root directory's allocation bitmap, up-case table and label.
type special struct {
	bitmapCluster uint32
	bitmapLen     uint64
	upcaseCluster uint32
	upcaseLen     uint64
	upcaseSum     uint32
	label         string
	hasBitmap     bool
	hasUpcase     bool
}

// scanSpecial records the first allocation bitmap, up-case table and volume label entries of a root
// directory, up to its end marker.
func scanSpecial(raw []byte, sp *special) {
	for i := 0; i+32 <= len(raw) && raw[i] != typeEnd; i += 32 {
		switch raw[i] {
		case typeBitmap, typeUpcase, typeLabel:
			_, _ = parseDir(raw[i:i+32], func(int) int64 { return 0 }, sp)
		}
	}
}

// parseDir decodes a directory's bytes into entry sets; base is the volume offset of each byte.
// A set with a bad checksum or shape is an error, as exfat-fuse treats it.
func parseDir(raw []byte, posOf func(int) int64, sp *special) ([]dirent, error) {
	le := binary.LittleEndian
	var out []dirent
	for i := 0; i+32 <= len(raw); i += 32 {
		e := raw[i : i+32]
		switch e[0] {
		case typeEnd:
			return out, nil
		case typeBitmap:
			if sp != nil && !sp.hasBitmap && e[1]&1 == 0 {
				sp.hasBitmap, sp.bitmapCluster, sp.bitmapLen = true, le.Uint32(e[20:]), le.Uint64(e[24:])
			}
			continue
		case typeUpcase:
			if sp != nil && !sp.hasUpcase {
				sp.hasUpcase, sp.upcaseSum, sp.upcaseCluster, sp.upcaseLen = true, le.Uint32(e[4:]), le.Uint32(e[20:]), le.Uint64(e[24:])
			}
			continue
		case typeLabel:
			if sp != nil {
				n := min(int(e[1]), 11)
				u := make([]uint16, n)
				for k := range u {
					u[k] = le.Uint16(e[2+2*k:])
				}
				sp.label = string(utf16.Decode(u))
			}
			continue
		case typeFile:
		default:
			continue // deleted entries, stray secondaries, GUID, padding and vendor entries
		}
		sec := int(e[1])
		if sec < 2 || sec > 18 {
			return out, fmt.Errorf("%w: file entry at byte %d has %d secondary entries", ErrCorrupt, posOf(i), sec)
		}
		end := i + 32*(sec+1)
		if end > len(raw) {
			return out, fmt.Errorf("%w: entry set at byte %d runs past the end of its directory", ErrCorrupt, posOf(i))
		}
		set := raw[i:end]
		if got, want := le.Uint16(e[2:]), setChecksum(set); got != want {
			return out, fmt.Errorf("%w: entry set at byte %d has checksum %#04x, computed %#04x", ErrCorrupt, posOf(i), got, want)
		}
		st := set[32:64]
		if st[0] != typeStream {
			return out, fmt.Errorf("%w: entry set at byte %d lacks its stream extension", ErrCorrupt, posOf(i))
		}
		nameLen := int(st[3])
		nameEntries := (nameLen + 14) / 15
		if nameLen == 0 || nameEntries > sec-1 {
			return out, fmt.Errorf("%w: entry set at byte %d: name of %d characters in %d entries", ErrCorrupt, posOf(i), nameLen, sec-1)
		}
		units := make([]uint16, 0, nameEntries*15)
		for k := 0; k < nameEntries; k++ {
			ne := set[64+32*k : 96+32*k]
			if ne[0] != typeName {
				return out, fmt.Errorf("%w: entry set at byte %d: entry %d is %#x, not a file name", ErrCorrupt, posOf(i), k+2, ne[0])
			}
			for c := 0; c < 15; c++ {
				units = append(units, le.Uint16(ne[2+2*c:]))
			}
		}
		d := dirent{
			name:       string(utf16.Decode(units[:nameLen])),
			attr:       le.Uint16(e[4:]),
			first:      le.Uint32(st[20:]),
			dataLen:    le.Uint64(st[24:]),
			validLen:   le.Uint64(st[8:]),
			contiguous: st[1]&flagNoFatChain != 0,
			allocated:  st[1]&flagAllocPossible != 0,
			pos:        posOf(i),
			created:    exfatTime(le.Uint32(e[8:]), e[20], e[22]),
			modified:   exfatTime(le.Uint32(e[12:]), e[21], e[23]),
			accessed:   exfatTime(le.Uint32(e[16:]), 0, e[24]),
		}
		i = end - 32
		if d.name == "." || d.name == ".." || strings.ContainsAny(d.name, "/\x00") {
			continue // cannot be an io/fs path element
		}
		out = append(out, d)
	}
	return out, nil
}
