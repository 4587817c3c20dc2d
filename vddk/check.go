package vddk

import (
	"encoding/binary"
	"fmt"
)

// Problem is one inconsistency Check found.
type Problem struct {
	File       string `json:"file"`
	Offset     int64  `json:"offset"` // byte offset in File of the structure at fault
	What       string `json:"what"`
	Repairable bool   `json:"repairable"`
	Repaired   bool   `json:"repaired,omitempty"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s at byte %d: %s", p.File, p.Offset, p.What)
	switch {
	case p.Repaired:
		s += " (repaired)"
	case p.Repairable:
		s += " (repairable)"
	}
	return s
}

// Check validates the structures of a disk's top link, as `qemu-img check` does, and with repair mends
// what can be mended: an unclean-shutdown mark, a grain table whose redundant copy differs (the primary
// is written first, so it wins unless it is the damaged one), a directory entry whose table lies
// outside the file while the redundant copy is sound.
func Check(path string, repair bool) ([]Problem, error) {
	d, err := Open(path, Options{SingleLink: true, Writable: repair})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []Problem
	for _, e := range d.links[0].exts {
		if fe, ok := e.(*foreignExtent); ok {
			out = append(out, fe.check(d.links[0].size)...)
			continue
		}
		g, ok := e.(*grainExtent)
		if !ok {
			continue
		}
		m, ok := g.m.(*sparseMapper)
		if !ok || m.streamMap != nil {
			continue
		}
		ps, err := checkSparse(g, m, repair)
		if err != nil {
			return out, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func checkSparse(g *grainExtent, m *sparseMapper, repair bool) ([]Problem, error) {
	path := g.inf.Path
	var out []Problem
	add := func(off int64, repairable bool, format string, args ...any) *Problem {
		out = append(out, Problem{File: path, Offset: off, What: fmt.Sprintf(format, args...), Repairable: repairable})
		return &out[len(out)-1]
	}
	hdr := make([]byte, SectorSize)
	if _, err := g.f.ReadAt(hdr, 0); err != nil {
		return nil, wrapErr(ErrFileError, path, err, "read header")
	}
	h, err := parseSparseHeader(hdr)
	if err != nil {
		return nil, wrapErr(ErrDiskInvalidDisk, path, err, "header")
	}
	// A writable open sets the mark itself; only a mark found before that counts.
	if g.inf.UncleanShutdown {
		p := add(72, true, "the disk was not closed cleanly (uncleanShutdown is set)")
		p.Repaired = repair // Close clears it
	}
	gtBytes := m.gtEntries * 4
	var rgd []uint32
	if h.Flags&flagRedundantGD != 0 && h.RGDOffset != 0 {
		rgd, err = readGD(g.f, path, g.fileSize, h.RGDOffset, uint64(len(m.gd)), gtBytes)
		if err != nil {
			add(int64(h.RGDOffset)*SectorSize, false, "redundant grain directory: %v", err)
		}
	}
	readTable := func(sector uint32) ([]uint32, error) {
		b := make([]byte, gtBytes)
		if _, err := g.f.ReadAt(b, int64(sector)*SectorSize); err != nil {
			return nil, err
		}
		t := make([]uint32, m.gtEntries)
		for i := range t {
			t[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		return t, nil
	}
	writeTable := func(sector uint32, t []uint32) error {
		b := make([]byte, gtBytes)
		for i, v := range t {
			binary.LittleEndian.PutUint32(b[4*i:], v)
		}
		_, err := g.f.WriteAt(b, int64(sector)*SectorSize)
		return err
	}
	// The primary directory as it is on disk: reads may have fallen back to the redundant one.
	if rgd != nil {
		raw := make([]byte, 4*len(m.gd))
		if _, err := g.f.ReadAt(raw, int64(h.GDOffset)*SectorSize); err == nil {
			gdSectors := (uint64(len(m.gd))*4 + SectorSize - 1) / SectorSize
			for i := range m.gd {
				v := binary.LittleEndian.Uint32(raw[4*i:])
				if v == 0 || (v >= m.minSector && int64(v)*SectorSize+gtBytes <= g.fileSize) {
					continue
				}
				off := int64(h.GDOffset)*SectorSize + 4*int64(i)
				p := add(off, rgd[i] != 0, "grain directory entry %d points at sector %d, outside the file", i, v)
				if !repair || rgd[i] == 0 {
					continue
				}
				// Put the table back where the standard layout keeps it (right after the directory),
				// filled from the redundant table.
				at := uint32(h.GDOffset + gdSectors + uint64(i)*uint64((gtBytes+SectorSize-1)/SectorSize))
				red, err := readTable(rgd[i])
				if err != nil || int64(at)*SectorSize+gtBytes > g.fileSize || at == rgd[i] {
					p.Repairable = false
					continue
				}
				if err := writeTable(at, red); err != nil {
					return out, wrapErr(ErrFileError, path, err, "rebuild grain table")
				}
				var b [4]byte
				binary.LittleEndian.PutUint32(b[:], at)
				if _, err := g.f.WriteAt(b[:], off); err != nil {
					return out, wrapErr(ErrFileError, path, err, "rebuild grain directory")
				}
				m.gd[i] = at
				p.Repaired = true
			}
		}
	}
	validGTE := func(v uint32) bool {
		return v == 0 || (v == 1 && m.zeroedOK) || (v >= m.minSector && int64(v)*SectorSize < g.fileSize)
	}
	owner := map[uint32]int64{}
	for i, gde := range m.gd {
		gdOff := int64(h.GDOffset)*SectorSize + 4*int64(i)
		var r uint32
		if rgd != nil {
			r = rgd[i]
		}
		if gde == 0 && r == 0 {
			continue
		}
		prim, perr := readTable(gde)
		var red []uint32
		if r != 0 {
			red, _ = readTable(r)
		}
		primOK := perr == nil && gde != 0
		if primOK {
			for _, v := range prim {
				primOK = primOK && validGTE(v)
			}
		}
		redOK := red != nil
		if redOK {
			for _, v := range red {
				redOK = redOK && validGTE(v)
			}
		}
		switch {
		case !primOK && redOK && gde != 0:
			p := add(gdOff, true, "grain table %d at sector %d is damaged; its redundant copy is sound", i, gde)
			if repair {
				if err := writeTable(gde, red); err != nil {
					return out, wrapErr(ErrFileError, path, err, "repair grain table")
				}
				prim, p.Repaired = red, true
			}
		case !primOK && !redOK:
			add(gdOff, false, "grain table %d (sector %d) holds entries outside the file and has no sound copy", i, gde)
			continue
		case primOK && red != nil && !equalTables(prim, red):
			p := add(int64(r)*SectorSize, true, "redundant grain table %d differs from the primary", i)
			if repair {
				if err := writeTable(r, prim); err != nil {
					return out, wrapErr(ErrFileError, path, err, "repair redundant grain table")
				}
				p.Repaired = true
			}
		}
		for j, v := range prim {
			if v <= 1 {
				continue
			}
			at := int64(gde)*SectorSize + 4*int64(j)
			if prev, dup := owner[v]; dup {
				add(at, false, "grain %d shares sector %d with the entry at byte %d", int64(i)*m.gtEntries+int64(j), v, prev)
			}
			owner[v] = at
		}
	}
	if repair && len(out) > 0 {
		m.gts = privateTables[uint32](4) // tables changed on disk
	}
	return out, nil
}

func equalTables(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
