package vddk

import (
	"encoding/binary"
	"os"
)

// ESXi sparse extents: COWD (vmfsSparse redo logs) and seSparse (space-efficient sparse, VMFS-6).

const (
	cowdMagic      = 0x44574f43 // "COWD"
	cowdHeaderSize = 2048
	cowdGTEntries  = 4096

	seSparseMagic         = 0xcafebabe
	seSparseVolatileMagic = 0xcafecafe
	seSparseVersion       = 0x0000000200000001
)

// cowdMapper resolves grains through a COWD grain directory (4096-entry tables, no redundant copy).
type cowdMapper struct {
	path     string
	f        *os.File
	fileSize int64
	gd       []uint32
	gts      tableCache[uint32]
}

func openCOWDExtent(f *os.File, path string, fileSize int64, hdr []byte, size int64, line ExtentLine, t *diskTables) (*grainExtent, error) {
	bad := func(format string, args ...any) error {
		return newErr(ErrDiskInvalidDisk, path, "invalid COWD extent: "+format, args...)
	}
	if len(hdr) < cowdHeaderSize || fileSize < cowdHeaderSize {
		return nil, bad("header is truncated")
	}
	version := binary.LittleEndian.Uint32(hdr[4:])
	numSectors := int64(binary.LittleEndian.Uint32(hdr[12:]))
	grain := int64(binary.LittleEndian.Uint32(hdr[16:]))
	gdOffset := int64(binary.LittleEndian.Uint32(hdr[20:]))
	gdEntries := int64(binary.LittleEndian.Uint32(hdr[24:]))
	if version != 1 {
		return nil, newErr(ErrDiskUnsupportedVersion, path, "COWD version %d is not supported (1 is)", version)
	}
	if grain == 0 || grain > 2048 || grain&(grain-1) != 0 {
		return nil, bad("grain size %d sectors is not a power of two up to 2048", grain)
	}
	need := (numSectors + cowdGTEntries*grain - 1) / (cowdGTEntries * grain)
	if gdEntries < need {
		return nil, bad("grain directory has %d entries, %d sectors need %d", gdEntries, numSectors, need)
	}
	if gdOffset < cowdHeaderSize/SectorSize || gdOffset*SectorSize+gdEntries*4 > fileSize {
		return nil, bad("grain directory at sector %d (%d entries) lies outside the file", gdOffset, gdEntries)
	}
	if err := t.chargeGD(path, need*4); err != nil {
		return nil, err
	}
	buf := make([]byte, need*4)
	if _, err := f.ReadAt(buf, gdOffset*SectorSize); err != nil {
		return nil, wrapErr(ErrFileError, path, err, "read COWD grain directory")
	}
	m := &cowdMapper{path: path, f: f, fileSize: fileSize, gd: make([]uint32, need)}
	for i := range m.gd {
		m.gd[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	m.gts = t.tables32(f, false)
	return &grainExtent{
		f:          f,
		fileSize:   fileSize,
		size:       size,
		grainBytes: grain * SectorSize,
		m:          m,
		inf: ExtentInfo{
			ExtentLine:      line,
			Path:            path,
			Format:          "vmfsSparse",
			Version:         version,
			Flags:           binary.LittleEndian.Uint32(hdr[8:]),
			GrainSectors:    grain,
			UncleanShutdown: binary.LittleEndian.Uint32(hdr[1648:]) != 0,
		},
	}, nil
}

func (m *cowdMapper) tableSpan() int64 { return cowdGTEntries }

func (m *cowdMapper) tableEmpty(g int64) (bool, error) {
	i := g / cowdGTEntries
	return i >= int64(len(m.gd)) || m.gd[i] <= 1, nil
}

func (m *cowdMapper) lookup(g int64) (grainRef, error) {
	i := g / cowdGTEntries
	if i >= int64(len(m.gd)) || m.gd[i] == 0 {
		return grainRef{state: allocNone}, nil
	}
	if m.gd[i] == 1 {
		// Sector 1 is inside the header: ESXi's readers treat it as an all-zero table.
		return grainRef{state: allocZero}, nil
	}
	gt, ok := m.gts.get(m.gd[i])
	if !ok {
		off := int64(m.gd[i]) * SectorSize
		if off < cowdHeaderSize || off+cowdGTEntries*4 > m.fileSize {
			return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "COWD grain directory entry %d points at sector %d, outside the file", i, m.gd[i])
		}
		buf := make([]byte, cowdGTEntries*4)
		if _, err := m.f.ReadAt(buf, off); err != nil {
			return grainRef{}, wrapErr(ErrFileError, m.path, err, "read COWD grain table")
		}
		gt = make([]uint32, cowdGTEntries)
		for j := range gt {
			gt[j] = binary.LittleEndian.Uint32(buf[4*j:])
		}
		m.gts.put(m.gd[i], gt)
	}
	gte := gt[g%cowdGTEntries]
	switch {
	case gte == 0:
		return grainRef{state: allocNone}, nil
	case gte == 1:
		return grainRef{state: allocZero}, nil
	case int64(gte) < cowdHeaderSize/SectorSize || int64(gte)*SectorSize >= m.fileSize:
		return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "COWD grain table entry for grain %d points at sector %d, outside the data", g, gte)
	}
	return grainRef{state: allocData, off: int64(gte) * SectorSize}, nil
}

// seSparseMapper resolves grains of a seSparse extent: 64-bit entries with a type nibble.
type seSparseMapper struct {
	path                  string
	f                     *os.File
	fileSize              int64
	gd                    []uint64
	gtSectors, gtEntries  int64
	gtStart, gtEnd        int64 // sector range of the grain tables area
	grainsOffset, grainSz int64
	gts                   tableCache[uint64]
}

func openSESparseExtent(f *os.File, path string, fileSize int64, hdr []byte, size int64, line ExtentLine, t *diskTables) (*grainExtent, error) {
	bad := func(format string, args ...any) error {
		return newErr(ErrDiskInvalidDisk, path, "invalid seSparse extent: "+format, args...)
	}
	if len(hdr) < SectorSize {
		return nil, bad("header is truncated")
	}
	u := func(off int) int64 { return int64(binary.LittleEndian.Uint64(hdr[off:])) }
	if uint64(u(8)) != seSparseVersion {
		return nil, newErr(ErrDiskUnsupportedVersion, path, "seSparse version %#x is not supported (2.1 is)", uint64(u(8)))
	}
	capacity, grain, gtSize, flags := u(16), u(24), u(32), u(40)
	if grain != 8 || gtSize != 64 || flags != 0 {
		return nil, bad("grain size %d, grain table size %d, flags %#x (8, 64, 0 expected)", grain, gtSize, flags)
	}
	if capacity < 0 || capacity > maxCapacitySectors {
		return nil, bad("capacity %d sectors is out of range", capacity)
	}
	fileSectors := fileSize / SectorSize
	area := func(name string, off, n int64) error {
		if off <= 0 || n < 0 || off > fileSectors || n > fileSectors || off+n > fileSectors+capacity {
			return bad("%s area at sector %d (%d sectors) lies outside the file", name, off, n)
		}
		return nil
	}
	volOff, gdOff, gdSize, gtOff, gtAreaSize, grainsOff := u(80), u(128), u(136), u(144), u(152), u(192)
	for _, a := range []struct {
		name   string
		off, n int64
	}{{"volatile header", volOff, 1}, {"grain directory", gdOff, gdSize}, {"grain tables", gtOff, gtAreaSize}, {"grains", grainsOff, 0}} {
		if err := area(a.name, a.off, a.n); err != nil {
			return nil, err
		}
	}
	if gdOff+gdSize > fileSectors || gtOff+gtAreaSize > fileSectors {
		return nil, bad("grain directory or tables extend past the end of the file")
	}
	vol := make([]byte, SectorSize)
	if _, err := f.ReadAt(vol, volOff*SectorSize); err != nil {
		return nil, wrapErr(ErrFileError, path, err, "read seSparse volatile header")
	}
	if binary.LittleEndian.Uint64(vol) != seSparseVolatileMagic {
		return nil, bad("volatile header has no magic")
	}
	if binary.LittleEndian.Uint64(vol[24:]) != 0 {
		return nil, newErr(ErrDiskNeedsRepair, path, "seSparse journal needs replaying (the disk was not closed cleanly)")
	}
	gtEntries := gtSize * SectorSize / 8
	need := (capacity + gtEntries*grain - 1) / (gtEntries * grain)
	if need > gdSize*SectorSize/8 {
		return nil, bad("grain directory has %d entries, capacity needs %d", gdSize*SectorSize/8, need)
	}
	if err := t.chargeGD(path, need*8); err != nil {
		return nil, err
	}
	buf := make([]byte, need*8)
	if _, err := f.ReadAt(buf, gdOff*SectorSize); err != nil {
		return nil, wrapErr(ErrFileError, path, err, "read seSparse grain directory")
	}
	m := &seSparseMapper{
		path: path, f: f, fileSize: fileSize, gd: make([]uint64, need),
		gtSectors: gtSize, gtEntries: gtEntries, gtStart: gtOff, gtEnd: gtOff + gtAreaSize,
		grainsOffset: grainsOff, grainSz: grain,
	}
	for i := range m.gd {
		m.gd[i] = binary.LittleEndian.Uint64(buf[8*i:])
		if e := m.gd[i]; e != 0 && e>>32 != 0x10000000 {
			return nil, bad("grain directory entry %d is %#x", i, e)
		}
	}
	m.gts = t.tables64(f)
	return &grainExtent{
		f: f, fileSize: fileSize, size: size, grainBytes: grain * SectorSize, m: m,
		inf: ExtentInfo{ExtentLine: line, Path: path, Format: "seSparse", Version: 0x201, GrainSectors: grain},
	}, nil
}

func (m *seSparseMapper) tableSpan() int64 { return m.gtEntries }

func (m *seSparseMapper) tableEmpty(g int64) (bool, error) {
	i := g / m.gtEntries
	return i >= int64(len(m.gd)) || m.gd[i] == 0, nil
}

func (m *seSparseMapper) lookup(g int64) (grainRef, error) {
	i := g / m.gtEntries
	if i >= int64(len(m.gd)) || m.gd[i] == 0 {
		return grainRef{state: allocNone}, nil
	}
	idx := uint32(m.gd[i])
	gt, ok := m.gts.get(idx)
	if !ok {
		sector := m.gtStart + int64(idx)*m.gtSectors
		if sector+m.gtSectors > m.gtEnd {
			return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "seSparse grain table %d lies outside the grain table area", idx)
		}
		buf := make([]byte, m.gtEntries*8)
		if _, err := m.f.ReadAt(buf, sector*SectorSize); err != nil {
			return grainRef{}, wrapErr(ErrFileError, m.path, err, "read seSparse grain table %d", idx)
		}
		gt = make([]uint64, m.gtEntries)
		for j := range gt {
			gt[j] = binary.LittleEndian.Uint64(buf[8*j:])
		}
		m.gts.put(idx, gt)
	}
	e := gt[g%m.gtEntries]
	switch e >> 60 {
	case 0:
		if e != 0 {
			return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "seSparse grain table entry for grain %d is %#x", g, e)
		}
		return grainRef{state: allocNone}, nil
	case 1, 2: // unmapped, zero grain
		return grainRef{state: allocZero}, nil
	case 3:
		idx := int64((e>>48)&0xfff) | int64(e&0xffffffffffff)<<12
		sector := m.grainsOffset + idx*m.grainSz
		if idx < 0 || sector < 0 || sector*SectorSize >= m.fileSize {
			return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "seSparse grain %d points at sector %d, past the end of the file", g, sector)
		}
		return grainRef{state: allocData, off: sector * SectorSize}, nil
	}
	return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "seSparse grain table entry for grain %d has unknown type %d", g, e>>60)
}

// sniff names the binary extent format of a file header, or "" for text.
func sniff(hdr []byte) string {
	if len(hdr) >= 4 {
		switch binary.LittleEndian.Uint32(hdr) {
		case sparseMagic:
			return "KDMV"
		case cowdMagic:
			return "COWD"
		}
	}
	if len(hdr) >= 8 && binary.LittleEndian.Uint64(hdr) == seSparseMagic {
		return "seSparse"
	}
	return ""
}
