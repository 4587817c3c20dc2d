// Package gpt reads a GUID partition table: the primary header at LBA 1, or the backup header at the
// last LBA when the primary is damaged, with CRC checks on headers and entry arrays.
package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// ErrNoTable means no valid GPT header was found at this sector size.
var ErrNoTable = errors.New("no valid GPT")

// GUID is a GPT GUID in its on-disk (mixed-endian) byte order.
type GUID [16]byte

// String formats g the usual way, upper case as in the UEFI specification.
func (g GUID) String() string {
	b := g[:]
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// IsZero reports an all-zero GUID (an unused entry's type).
func (g GUID) IsZero() bool { return g == GUID{} }

// Partition is one used entry.
type Partition struct {
	Number     int // entry index + 1
	Type       GUID
	Unique     GUID
	FirstLBA   uint64
	LastLBA    uint64 // inclusive
	Attributes uint64
	Name       string
}

// Table is a GPT as read from one header.
type Table struct {
	SectorSize   int
	DiskGUID     GUID
	FirstUsable  uint64
	LastUsable   uint64
	FromBackup   bool // the primary header was bad; this came from the backup
	Partitions   []Partition
	Problems     []string
	HeaderLBA    uint64
	EntriesLBA   uint64
	EntryCount   uint32
	EntrySize    uint32
	PrimaryError error // why the primary was not used (when FromBackup)
}

// maxEntryArray bounds the entry array we are willing to read (the usual is 16 KiB).
const maxEntryArray = 1 << 20

// Read looks for a GPT on a disk of diskSize bytes with the given logical sector size: the primary
// header first, then the backup at the last LBA (and at the primary's alternate LBA if that differs).
func Read(r io.ReaderAt, sectorSize int, diskSize int64) (*Table, error) {
	if sectorSize < 512 || sectorSize > 65536 || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("bad sector size %d", sectorSize)
	}
	lastLBA := uint64(diskSize/int64(sectorSize)) - 1
	if diskSize/int64(sectorSize) < 3 {
		return nil, fmt.Errorf("%w: disk of %d bytes is too small", ErrNoTable, diskSize)
	}
	t, perr := readAt(r, sectorSize, 1, lastLBA)
	if perr == nil {
		return t, nil
	}
	t, berr := readAt(r, sectorSize, lastLBA, lastLBA)
	if berr == nil {
		t.FromBackup = true
		t.PrimaryError = perr
		return t, nil
	}
	return nil, fmt.Errorf("%w: primary: %v; backup: %v", ErrNoTable, perr, berr)
}

func readAt(r io.ReaderAt, ss int, lba, lastLBA uint64) (*Table, error) {
	h := make([]byte, ss)
	if n, _ := r.ReadAt(h, int64(lba)*int64(ss)); n != ss {
		return nil, fmt.Errorf("header at LBA %d unreadable", lba)
	}
	if string(h[:8]) != "EFI PART" {
		return nil, fmt.Errorf("no EFI PART signature at LBA %d", lba)
	}
	hsize := binary.LittleEndian.Uint32(h[12:])
	if hsize < 92 || int(hsize) > ss {
		return nil, fmt.Errorf("header at LBA %d: size %d out of range", lba, hsize)
	}
	want := binary.LittleEndian.Uint32(h[16:])
	hdr := bytes.Clone(h[:hsize])
	clear(hdr[16:20])
	if got := crc32.ChecksumIEEE(hdr); got != want {
		return nil, fmt.Errorf("header at LBA %d: CRC %08x, expected %08x", lba, got, want)
	}
	if my := binary.LittleEndian.Uint64(h[24:]); my != lba {
		return nil, fmt.Errorf("header at LBA %d says it is at LBA %d", lba, my)
	}
	t := &Table{
		SectorSize:  ss,
		HeaderLBA:   lba,
		FirstUsable: binary.LittleEndian.Uint64(h[40:]),
		LastUsable:  binary.LittleEndian.Uint64(h[48:]),
		EntriesLBA:  binary.LittleEndian.Uint64(h[72:]),
		EntryCount:  binary.LittleEndian.Uint32(h[80:]),
		EntrySize:   binary.LittleEndian.Uint32(h[84:]),
	}
	copy(t.DiskGUID[:], h[56:72])
	if t.FirstUsable > t.LastUsable || t.LastUsable > lastLBA {
		return nil, fmt.Errorf("header at LBA %d: usable LBAs %d–%d do not fit a disk ending at %d", lba, t.FirstUsable, t.LastUsable, lastLBA)
	}
	if t.EntrySize < 128 || t.EntrySize%8 != 0 || t.EntrySize > 4096 {
		return nil, fmt.Errorf("header at LBA %d: entry size %d", lba, t.EntrySize)
	}
	total := uint64(t.EntryCount) * uint64(t.EntrySize)
	if total > maxEntryArray || t.EntriesLBA > lastLBA || total > (lastLBA-t.EntriesLBA+1)*uint64(ss) {
		return nil, fmt.Errorf("header at LBA %d: %d entries of %d bytes at LBA %d do not fit", lba, t.EntryCount, t.EntrySize, t.EntriesLBA)
	}
	arr := make([]byte, total)
	if n, _ := r.ReadAt(arr, int64(t.EntriesLBA)*int64(ss)); n != len(arr) {
		return nil, fmt.Errorf("entry array at LBA %d unreadable", t.EntriesLBA)
	}
	if got, want := crc32.ChecksumIEEE(arr), binary.LittleEndian.Uint32(h[88:]); got != want {
		return nil, fmt.Errorf("entry array at LBA %d: CRC %08x, expected %08x", t.EntriesLBA, got, want)
	}
	for i := 0; i < int(t.EntryCount); i++ {
		e := arr[i*int(t.EntrySize) : (i+1)*int(t.EntrySize)]
		var p Partition
		copy(p.Type[:], e[0:16])
		if p.Type.IsZero() {
			continue
		}
		p.Number = i + 1
		copy(p.Unique[:], e[16:32])
		p.FirstLBA = binary.LittleEndian.Uint64(e[32:])
		p.LastLBA = binary.LittleEndian.Uint64(e[40:])
		p.Attributes = binary.LittleEndian.Uint64(e[48:])
		p.Name = name(e[56:128])
		// Like Linux, an entry that is inverted or runs past the disk spoils only itself.
		if p.FirstLBA > p.LastLBA || p.LastLBA > lastLBA {
			t.Problems = append(t.Problems, fmt.Sprintf("entry %d: LBAs %d–%d do not fit a disk ending at %d", p.Number, p.FirstLBA, p.LastLBA, lastLBA))
			continue
		}
		t.Partitions = append(t.Partitions, p)
	}
	return t, nil
}

// name decodes a UTF-16LE partition name up to its first NUL; whatever follows the NUL is ignored.
func name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
