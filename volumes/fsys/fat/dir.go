package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Attribute bits of a directory entry.
const (
	AttrReadOnly = 0x01
	AttrHidden   = 0x02
	AttrSystem   = 0x04
	AttrVolume   = 0x08
	AttrDir      = 0x10
	AttrArchive  = 0x20
	attrLFN      = 0x0F
)

// maxDirBytes is the FAT limit of 65536 entries per directory; longer chains are refused rather than
// read into memory.
const maxDirBytes = 65536 * 32

// dirent is one live entry of a directory.
type dirent struct {
	name    string // long name, or the short name as displayed
	short   string // upper-case 8.3 alias, "NAME.EXT"
	attr    byte
	cluster uint32
	size    uint32
	pos     int64 // byte offset of the short entry in the volume: the inode number source
	crtCS   byte
	crtTime uint16
	crtDate uint16
	accDate uint16
	modTime uint16
	modDate uint16
}

func (d *dirent) isDir() bool { return d.attr&AttrDir != 0 }

// fatTime converts a FAT date/time pair as the Linux kernel's fat_time_fat2unix does, taking the stored
// wall clock as UTC (the tz=UTC mount option): out-of-range fields are not rejected, they add up.
func fatTime(date, tm uint16, cs byte) time.Time {
	year := 1980 + int(date>>9)
	month := max(1, int(date>>5&0x0F))
	day := max(1, int(date&0x1F))
	secs := int64(tm>>11)*3600 + int64(tm>>5&0x3F)*60 + int64(tm&0x1F)*2
	var daysBefore = [16]int{0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 0, 0, 0}
	days := daysBefore[month] + day - 1
	if month > 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days++
	}
	t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days).Add(time.Duration(secs) * time.Second)
	if cs != 0 {
		t = t.Add(time.Duration(cs/100)*time.Second + time.Duration(cs%100)*10*time.Millisecond)
	}
	return t
}

// parseDir decodes the raw bytes of a directory. base is the volume offset of raw[0] for the
// contiguous FAT12/16 root; for cluster chains, posOf maps a byte index to its volume offset.
func parseDir(raw []byte, posOf func(int) int64) []dirent {
	var out []dirent
	var lfn lfnAssembler
	for i := 0; i+32 <= len(raw); i += 32 {
		e := raw[i : i+32]
		switch e[0] {
		case 0x00:
			return out // end of directory
		case 0xE5:
			lfn.next = 0
			continue
		}
		attr := e[11]
		if attr == attrLFN {
			lfn.add(e)
			continue
		}
		long, hasLong := lfn.take(e)
		if attr&AttrVolume != 0 {
			continue
		}
		if e[0] == '.' && (string(e[:11]) == ".          " || string(e[:11]) == "..         ") {
			continue
		}
		stored, display := shortName(e[:11], e[12])
		name := display
		if hasLong {
			name = long
		}
		if !validName(name) {
			continue
		}
		le := binary.LittleEndian
		d := dirent{
			name:    name,
			short:   stored,
			attr:    attr,
			size:    le.Uint32(e[28:]),
			pos:     posOf(i),
			crtCS:   e[13],
			crtTime: le.Uint16(e[14:]),
			crtDate: le.Uint16(e[16:]),
			accDate: le.Uint16(e[18:]),
			modTime: le.Uint16(e[22:]),
			modDate: le.Uint16(e[24:]),
		}
		d.cluster = uint32(le.Uint16(e[26:]))
		d.cluster |= uint32(le.Uint16(e[20:])) << 16
		out = append(out, d)
	}
	return out
}

// validName rejects names that cannot be an io/fs path element.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}

// readDirBytes loads a directory: the fixed root region on FAT12/16 (cluster 0), else its cluster chain.
func (f *FS) readDirBytes(cluster uint32) ([]byte, func(int) int64, error) {
	g := f.g
	if cluster == 0 && g.typ != FAT32 {
		raw := make([]byte, g.rootEntries*32)
		if _, err := f.r.ReadAt(raw, g.rootOffset); err != nil {
			return nil, nil, fmt.Errorf("reading root directory: %w", err)
		}
		return raw, func(i int) int64 { return g.rootOffset + int64(i) }, nil
	}
	if cluster == 0 {
		return nil, func(int) int64 { return 0 }, nil
	}
	c, err := f.tab.Walk(cluster, maxDirBytes/g.clusterSize+1)
	if err != nil {
		return nil, nil, err
	}
	if !c.Complete && c.Clusters*g.clusterSize > maxDirBytes {
		return nil, nil, fmt.Errorf("%w: directory at cluster %d is longer than 65536 entries (a looping or corrupt cluster chain)", ErrCorrupt, cluster)
	}
	return fsys.ReadRuns(f.r, c.Runs, c.Clusters*g.clusterSize, g.clusterSize, f.clusterOffset)
}

func (f *FS) clusterOffset(c uint32) int64 {
	return f.g.dataOffset + int64(c-2)*f.g.clusterSize
}
