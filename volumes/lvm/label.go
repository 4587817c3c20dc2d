// Package lvm reads LVM2 physical volumes (label, PV header, text metadata areas) and assembles volume
// groups, possibly spread over several disks, into logical volumes readable as block devices.
package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
	"github.com/vmdkmount/vmdkmount/volumes/probe"
)

// ErrNoLabel means the device carries no LVM2 label.
var ErrNoLabel = errors.New("no LVM2 label")

// crc is lvm2's calc_crc: the reflected IEEE polynomial seeded with 0xf597a6cf, no final inversion.
func crc(b []byte) uint32 {
	return ^crc32.Update(^uint32(0xf597a6cf), crc32.IEEETable, b)
}

// Area is a data or metadata area of a PV, in bytes from the PV start. Size 0 means "to the end".
type Area struct{ Offset, Size uint64 }

// Copy is one valid copy of the VG metadata read from a metadata area.
type Copy struct {
	VGName string
	VGID   string
	Seqno  int64
	Text   string
	Root   *Section
}

// PV is one physical volume found on a device.
type PV struct {
	UUID      string // with dashes, as the metadata names it
	DevSize   uint64
	Data      []Area
	Metadata  []Area
	Copies    []Copy   // valid metadata copies, one per usable metadata area
	Problems  []string // metadata areas that could not be used, and why
	LabelSect int
	dev       layout.Dev
}

// Dev is the device the PV was read from.
func (pv *PV) Dev() layout.Dev { return pv.dev }

// maxText bounds one metadata copy; lvm2's default area is 1 MiB and real metadata is a few KiB.
const maxText = 64 << 20

// ReadPV reads the LVM2 label in sectors 0–3 of dev, its PV header and every metadata area.
func ReadPV(dev layout.Dev) (*PV, error) {
	sec := make([]byte, 512)
	for s := 0; s < 4; s++ {
		if n, _ := dev.ReadAt(sec, int64(s)*512); n != 512 {
			break
		}
		if string(sec[:8]) != "LABELONE" {
			continue
		}
		if got, want := crc(sec[20:]), binary.LittleEndian.Uint32(sec[16:]); got != want {
			return nil, fmt.Errorf("LVM label in sector %d: CRC %08x, expected %08x", s, got, want)
		}
		if n := binary.LittleEndian.Uint64(sec[8:]); n != uint64(s) {
			return nil, fmt.Errorf("LVM label in sector %d says sector %d", s, n)
		}
		if string(sec[24:32]) != "LVM2 001" {
			return nil, fmt.Errorf("LVM label in sector %d: type %q is not LVM2 001", s, sec[24:32])
		}
		pv, err := parsePVHeader(sec, dev)
		if err != nil {
			return nil, fmt.Errorf("LVM label in sector %d: %w", s, err)
		}
		pv.LabelSect = s
		pv.readMetadata()
		return pv, nil
	}
	return nil, ErrNoLabel
}

func parsePVHeader(sec []byte, dev layout.Dev) (*PV, error) {
	off := int(binary.LittleEndian.Uint32(sec[20:]))
	if off < 32 || off+40 > len(sec) {
		return nil, fmt.Errorf("PV header offset %d out of range", off)
	}
	h := sec[off:]
	pv := &PV{UUID: probe.FormatLVMID(h[:32]), DevSize: binary.LittleEndian.Uint64(h[32:]), dev: dev}
	pos := 40
	for list := 0; list < 2; list++ {
		for {
			if pos+16 > len(h) {
				return nil, errors.New("PV header area lists run off the sector")
			}
			a := Area{binary.LittleEndian.Uint64(h[pos:]), binary.LittleEndian.Uint64(h[pos+8:])}
			pos += 16
			if a.Offset == 0 {
				break
			}
			if list == 0 {
				pv.Data = append(pv.Data, a)
			} else {
				pv.Metadata = append(pv.Metadata, a)
			}
		}
	}
	if len(pv.Data) == 0 {
		return nil, errors.New("PV header lists no data area")
	}
	return pv, nil
}

// readMetadata reads the committed text of every metadata area, keeping those whose checksums hold.
func (pv *PV) readMetadata() {
	for i, a := range pv.Metadata {
		c, err := pv.readArea(a)
		if err != nil {
			pv.Problems = append(pv.Problems, fmt.Sprintf("PV %s metadata area %d at %d: %v", pv.UUID, i, a.Offset, err))
			continue
		}
		if c != nil {
			pv.Copies = append(pv.Copies, *c)
		}
	}
}

// readArea returns the committed metadata copy of one area, or nil if the area is marked ignored or empty.
func (pv *PV) readArea(a Area) (*Copy, error) {
	size := uint64(pv.dev.Size())
	if a.Offset >= size || a.Size < 512 || a.Size > size-a.Offset {
		return nil, fmt.Errorf("area of %d bytes does not fit the %d-byte device", a.Size, size)
	}
	h := make([]byte, 512)
	if n, _ := pv.dev.ReadAt(h, int64(a.Offset)); n != 512 {
		return nil, errors.New("header unreadable")
	}
	if got, want := crc(h[4:]), binary.LittleEndian.Uint32(h); got != want {
		return nil, fmt.Errorf("header CRC %08x, expected %08x", got, want)
	}
	if string(h[4:20]) != " LVM2 x[5A%r0N*>" {
		return nil, errors.New("bad metadata area magic")
	}
	if v := binary.LittleEndian.Uint32(h[20:]); v != 1 {
		return nil, fmt.Errorf("metadata area version %d", v)
	}
	start, msize := binary.LittleEndian.Uint64(h[24:]), binary.LittleEndian.Uint64(h[32:])
	if start != a.Offset || msize != a.Size {
		return nil, fmt.Errorf("header places the area at %d+%d, the PV header at %d+%d", start, msize, a.Offset, a.Size)
	}
	loc := h[40:64]
	off, tsize := binary.LittleEndian.Uint64(loc), binary.LittleEndian.Uint64(loc[8:])
	sum, flags := binary.LittleEndian.Uint32(loc[16:]), binary.LittleEndian.Uint32(loc[20:])
	if flags&1 != 0 || tsize == 0 {
		return nil, nil
	}
	if off < 512 || off >= msize || tsize > msize-512 || tsize > maxText {
		return nil, fmt.Errorf("text of %d bytes at %d does not fit the %d-byte area", tsize, off, msize)
	}
	text := make([]byte, tsize)
	// The area is a ring after its 512-byte header: text running past the end continues after the header.
	first := min(tsize, msize-off)
	if n, _ := pv.dev.ReadAt(text[:first], int64(start+off)); n != int(first) {
		return nil, errors.New("text unreadable")
	}
	if first < tsize {
		if n, _ := pv.dev.ReadAt(text[first:], int64(start+512)); n != int(tsize-first) {
			return nil, errors.New("wrapped text unreadable")
		}
	}
	if got := crc(text); got != sum {
		return nil, fmt.Errorf("text CRC %08x, expected %08x", got, sum)
	}
	root, err := ParseText(string(text))
	if err != nil {
		return nil, err
	}
	c := &Copy{Text: string(text), Root: root}
	for _, s := range root.Children {
		if id := s.String("id"); id != "" {
			c.VGName, c.VGID = s.Name, id
			c.Seqno, _ = s.Int("seqno")
			break
		}
	}
	if c.VGName == "" {
		return nil, errors.New("metadata holds no volume group section")
	}
	return c, nil
}
