// Package mbr reads a DOS (MBR) partition table with its chain of extended boot records, numbering
// partitions the way Linux does: primaries 1–4 by slot, logical partitions from 5 in chain order.
package mbr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNoTable means sector 0 is not an MBR partition table.
var ErrNoTable = errors.New("no MBR partition table")

// Partition is one used table entry.
type Partition struct {
	Number   int    // 1–4 primary slots, 5+ logical partitions
	Type     byte   // system id
	Active   bool   // boot flag 0x80
	Start    uint64 // first sector, absolute
	Sectors  uint64 // length in sectors
	Extended bool   // an extended container (0x05, 0x0F, 0x85), not a volume
	Logical  bool   // found in the EBR chain
}

// Table is a parsed MBR with its logical partitions.
type Table struct {
	Signature  uint32 // disk signature at 0x1B8
	Partitions []Partition
	// Problems lists entries that were skipped and why; each spoils only itself.
	Problems []string
	// Protective is true when a slot has type 0xEE (a GPT disk: protective or hybrid MBR).
	Protective bool
}

// IsExtended reports whether t is an extended-partition container type.
func IsExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

type entry struct {
	boot    byte
	typ     byte
	start   uint64
	sectors uint64
}

func entries(sec []byte) [4]entry {
	var e [4]entry
	for i := range e {
		b := sec[0x1BE+16*i:]
		e[i] = entry{boot: b[0], typ: b[4], start: uint64(binary.LittleEndian.Uint32(b[8:])), sectors: uint64(binary.LittleEndian.Uint32(b[12:]))}
	}
	return e
}

// LooksLikeVBR reports whether sector 0 is a filesystem boot sector rather than an MBR: both end in 55AA.
func LooksLikeVBR(sec []byte) bool {
	if len(sec) < 512 {
		return false
	}
	switch {
	case string(sec[3:11]) == "NTFS    ", string(sec[3:11]) == "EXFAT   ", string(sec[3:11]) == "-FVE-FS-",
		string(sec[54:59]) == "FAT12", string(sec[54:59]) == "FAT16", string(sec[82:87]) == "FAT32":
		return true
	}
	return false
}

// maxLogical bounds the EBR chain; a chain is at most one EBR per sector anyway, this keeps
// hostile images from costing time.
const maxLogical = 1024

// Read parses the MBR of a disk of diskSectors sectors of sectorSize bytes.
func Read(r io.ReaderAt, sectorSize int, diskSectors uint64) (*Table, error) {
	sec := make([]byte, 512)
	if n, _ := r.ReadAt(sec, 0); n != 512 {
		return nil, fmt.Errorf("read sector 0: %w", io.ErrUnexpectedEOF)
	}
	if sec[510] != 0x55 || sec[511] != 0xAA {
		return nil, fmt.Errorf("%w: no 55AA signature", ErrNoTable)
	}
	if LooksLikeVBR(sec) {
		return nil, fmt.Errorf("%w: sector 0 is a filesystem boot sector", ErrNoTable)
	}
	t := &Table{Signature: binary.LittleEndian.Uint32(sec[0x1B8:])}
	es := entries(sec)
	valid := 0
	for i, e := range es {
		if e.typ == 0 && e.sectors == 0 && e.start == 0 {
			continue
		}
		if e.typ == 0xEE {
			t.Protective = true
		}
		if e.boot != 0 && e.boot != 0x80 {
			t.Problems = append(t.Problems, fmt.Sprintf("slot %d: boot flag %#02x is neither 0x00 nor 0x80", i+1, e.boot))
			continue
		}
		if e.typ == 0 || e.sectors == 0 {
			t.Problems = append(t.Problems, fmt.Sprintf("slot %d: type %#02x with %d sectors is not a partition", i+1, e.typ, e.sectors))
			continue
		}
		p := Partition{Number: i + 1, Type: e.typ, Active: e.boot == 0x80, Start: e.start, Sectors: e.sectors, Extended: IsExtended(e.typ)}
		if problem := fit(&p, diskSectors); problem != "" {
			t.Problems = append(t.Problems, fmt.Sprintf("slot %d: %s", i+1, problem))
			if p.Sectors == 0 {
				continue
			}
		}
		valid++
		t.Partitions = append(t.Partitions, p)
	}
	if valid == 0 && len(t.Problems) > 0 {
		return nil, fmt.Errorf("%w: no valid entry (%s)", ErrNoTable, t.Problems[0])
	}
	next := 5
	for _, p := range t.Partitions {
		if p.Extended {
			next = t.readChain(r, sectorSize, diskSectors, p, next)
		}
	}
	return t, nil
}

// fit checks that p lies inside the disk. Like Linux, a partition running past the end is cut at the
// end of the disk (reported), and one starting past the end is dropped (Sectors set to 0).
func fit(p *Partition, diskSectors uint64) string {
	if p.Start >= diskSectors {
		p.Sectors = 0
		return fmt.Sprintf("starts at sector %d, past the end of the disk (%d sectors)", p.Start, diskSectors)
	}
	if p.Sectors > diskSectors-p.Start {
		was := p.Sectors
		p.Sectors = diskSectors - p.Start
		return fmt.Sprintf("%d sectors from %d run past the end of the disk; cut to %d", was, p.Start, p.Sectors)
	}
	return ""
}

// readChain follows the EBR chain of extended partition ext, numbering logicals from next.
// Each EBR's data entries are relative to that EBR, its link relative to the extended partition start.
func (t *Table) readChain(r io.ReaderAt, sectorSize int, diskSectors uint64, ext Partition, next int) int {
	seen := map[uint64]bool{}
	sec := make([]byte, 512)
	ebr := ext.Start
	for {
		if seen[ebr] {
			t.Problems = append(t.Problems, fmt.Sprintf("EBR chain loops back to sector %d", ebr))
			return next
		}
		if len(seen) >= maxLogical {
			t.Problems = append(t.Problems, fmt.Sprintf("EBR chain longer than %d records; rest ignored", maxLogical))
			return next
		}
		seen[ebr] = true
		if n, _ := r.ReadAt(sec, int64(ebr)*int64(sectorSize)); n != 512 {
			t.Problems = append(t.Problems, fmt.Sprintf("EBR at sector %d: unreadable", ebr))
			return next
		}
		if sec[510] != 0x55 || sec[511] != 0xAA {
			t.Problems = append(t.Problems, fmt.Sprintf("EBR at sector %d: no 55AA signature", ebr))
			return next
		}
		var link uint64
		for i, e := range entries(sec) {
			if e.sectors == 0 {
				continue
			}
			if IsExtended(e.typ) {
				if link == 0 {
					link = ext.Start + e.start
				}
				continue
			}
			if e.typ == 0 {
				continue
			}
			p := Partition{Number: next, Type: e.typ, Active: e.boot == 0x80, Start: ebr + e.start, Sectors: e.sectors, Logical: true}
			// Slots 3 and 4 of an EBR often hold garbage: accept them only inside the container (as Linux).
			if i >= 2 && (p.Start < ext.Start || p.Start+p.Sectors > ext.Start+ext.Sectors) {
				continue
			}
			if problem := fit(&p, diskSectors); problem != "" {
				t.Problems = append(t.Problems, fmt.Sprintf("logical %d (EBR at %d): %s", next, ebr, problem))
				if p.Sectors == 0 {
					continue
				}
			}
			t.Partitions = append(t.Partitions, p)
			next++
		}
		if link == 0 || link == ebr {
			if link == ebr {
				t.Problems = append(t.Problems, fmt.Sprintf("EBR at sector %d links to itself", ebr))
			}
			return next
		}
		if link >= diskSectors {
			t.Problems = append(t.Problems, fmt.Sprintf("EBR at sector %d links past the end of the disk (%d)", ebr, link))
			return next
		}
		ebr = link
	}
}

// TypeName names common MBR system ids.
func TypeName(t byte) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "Unknown"
}

var typeNames = map[byte]string{
	0x01: "FAT12", 0x04: "FAT16 <32M", 0x05: "Extended", 0x06: "FAT16", 0x07: "HPFS/NTFS/exFAT",
	0x0B: "W95 FAT32", 0x0C: "W95 FAT32 (LBA)", 0x0E: "W95 FAT16 (LBA)", 0x0F: "W95 Extended (LBA)",
	0x11: "Hidden FAT12", 0x12: "Compaq diagnostics", 0x14: "Hidden FAT16 <32M", 0x16: "Hidden FAT16",
	0x17: "Hidden HPFS/NTFS", 0x1B: "Hidden W95 FAT32", 0x1C: "Hidden W95 FAT32 (LBA)",
	0x1E: "Hidden W95 FAT16 (LBA)", 0x27: "Hidden NTFS WinRE", 0x42: "SFS / Windows LDM", 0x82: "Linux swap / Solaris",
	0x83: "Linux", 0x85: "Linux extended", 0x86: "NTFS volume set", 0x87: "NTFS volume set",
	0x8E: "Linux LVM", 0xA5: "FreeBSD", 0xA6: "OpenBSD", 0xA8: "Darwin UFS", 0xA9: "NetBSD", 0xAB: "Darwin boot",
	0xAF: "HFS / HFS+", 0xBE: "Solaris boot", 0xBF: "Solaris", 0xDA: "Non-FS data", 0xEE: "GPT",
	0xEF: "EFI (FAT-12/16/32)", 0xFB: "VMware VMFS", 0xFC: "VMware VMKCORE", 0xFD: "Linux raid autodetect",
}
