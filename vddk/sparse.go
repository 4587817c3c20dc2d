package vddk

import (
	"encoding/binary"
	"fmt"
	"os"
)

// Hosted sparse extent ("KDMV"): header, grain directory, grain tables.

const (
	sparseMagic = 0x564d444b // "KDMV"
	gdAtEnd     = ^uint64(0) // stream files: the footer holds the real gdOffset

	flagNewlineCheck = 1 << 0
	flagRedundantGD  = 1 << 1
	flagZeroedGrain  = 1 << 2
	flagCompressed   = 1 << 16
	flagMarkers      = 1 << 17
	knownIncompat    = flagCompressed | flagMarkers

	maxGrainSectors    = 0x200000 // 1 GiB, qemu's bound
	maxGTEsPerGT       = 1 << 16
	maxGDEntries       = 32 << 20 // qemu: "L1 size too big" beyond this
	maxEmbeddedDesc    = MaxDescriptorSize / SectorSize
	gtCacheBytes       = 16 << 20 // decoded grain tables kept per extent
	grainCacheBytes    = 16 << 20 // inflated stream grains kept per disk (all its files)
	maxCompressedGrain = 2048     // sectors (1 MiB); VMware writes 128
)

// sparseHeader is the 512-byte KDMV header (also the stream footer).
type sparseHeader struct {
	Version       uint32
	Flags         uint32
	Capacity      uint64
	GrainSize     uint64
	DescOffset    uint64
	DescSize      uint64
	NumGTEsPerGT  uint32
	RGDOffset     uint64
	GDOffset      uint64
	OverHead      uint64
	Unclean       bool
	NewlineChecks [4]byte
	CompressAlgo  uint16
}

func parseSparseHeader(b []byte) (*sparseHeader, error) {
	if len(b) < SectorSize {
		return nil, fmt.Errorf("sparse header is truncated (%d bytes)", len(b))
	}
	if binary.LittleEndian.Uint32(b[0:]) != sparseMagic {
		return nil, fmt.Errorf("no KDMV magic")
	}
	h := &sparseHeader{
		Version:      binary.LittleEndian.Uint32(b[4:]),
		Flags:        binary.LittleEndian.Uint32(b[8:]),
		Capacity:     binary.LittleEndian.Uint64(b[12:]),
		GrainSize:    binary.LittleEndian.Uint64(b[20:]),
		DescOffset:   binary.LittleEndian.Uint64(b[28:]),
		DescSize:     binary.LittleEndian.Uint64(b[36:]),
		NumGTEsPerGT: binary.LittleEndian.Uint32(b[44:]),
		RGDOffset:    binary.LittleEndian.Uint64(b[48:]),
		GDOffset:     binary.LittleEndian.Uint64(b[56:]),
		OverHead:     binary.LittleEndian.Uint64(b[64:]),
		Unclean:      b[72] != 0,
		CompressAlgo: binary.LittleEndian.Uint16(b[77:]),
	}
	copy(h.NewlineChecks[:], b[73:77])
	return h, nil
}

// validate checks every field a reader will use, against the file size, before anything is allocated.
func (h *sparseHeader) validate(fileSize int64) (Code, error) {
	if h.Version < 1 || h.Version > 3 {
		return ErrDiskUnsupportedVersion, fmt.Errorf("sparse header version %d is not supported (1 to 3 are)", h.Version)
	}
	if unknown := h.Flags &^ 0xffff &^ knownIncompat; unknown != 0 {
		return ErrDiskNotSupported, fmt.Errorf("sparse header has unknown incompatible flags %#x", unknown)
	}
	if h.Flags&flagMarkers != 0 && h.Flags&flagCompressed == 0 {
		return ErrDiskInvalidDisk, fmt.Errorf("sparse header has markers without compression (flags %#x)", h.Flags)
	}
	if h.Flags&flagNewlineCheck != 0 && h.NewlineChecks != [4]byte{'\n', ' ', '\r', '\n'} {
		return ErrDiskInvalidDisk, fmt.Errorf("newline check bytes are % x, not 0a 20 0d 0a: the file was corrupted by a text-mode transfer", h.NewlineChecks)
	}
	if h.Flags&flagCompressed != 0 && h.CompressAlgo != 1 {
		return ErrDiskNotSupported, fmt.Errorf("compression algorithm %d is not supported (1, deflate, is)", h.CompressAlgo)
	}
	if h.GrainSize == 0 || h.GrainSize > maxGrainSectors || h.GrainSize&(h.GrainSize-1) != 0 {
		return ErrDiskInvalidDisk, fmt.Errorf("grain size %d sectors is not a power of two up to %d", h.GrainSize, maxGrainSectors)
	}
	if h.Flags&flagCompressed != 0 && h.GrainSize > maxCompressedGrain {
		// Each compressed grain is inflated into memory: keep that bounded.
		return ErrDiskNotSupported, fmt.Errorf("compressed grain size %d sectors is larger than %d", h.GrainSize, maxCompressedGrain)
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > maxGTEsPerGT {
		return ErrDiskInvalidDisk, fmt.Errorf("%d grain table entries per table is out of range", h.NumGTEsPerGT)
	}
	if h.Capacity > uint64(maxCapacitySectors) {
		return ErrDiskInvalidDisk, fmt.Errorf("capacity %d sectors is larger than %d", h.Capacity, maxCapacitySectors)
	}
	if h.numGDEntries() > maxGDEntries {
		return ErrDiskInvalidDisk, fmt.Errorf("grain directory of %d entries is too big", h.numGDEntries())
	}
	if h.DescOffset != 0 {
		if h.DescSize == 0 || h.DescSize > maxEmbeddedDesc {
			return ErrDiskInvalidDisk, fmt.Errorf("embedded descriptor size %d sectors is out of range", h.DescSize)
		}
		if h.DescOffset > uint64(fileSize/SectorSize) {
			return ErrDiskInvalidDisk, fmt.Errorf("embedded descriptor at sector %d lies past the end of the file", h.DescOffset)
		}
	}
	return OK, nil
}

func (h *sparseHeader) gtCoverage() uint64 { return uint64(h.NumGTEsPerGT) * h.GrainSize }

func (h *sparseHeader) numGDEntries() uint64 {
	return (h.Capacity + h.gtCoverage() - 1) / h.gtCoverage()
}

// sparseMapper resolves grains through a KDMV grain directory.
type sparseMapper struct {
	path       string
	f          *os.File
	fileSize   int64
	gd         []uint32
	gtEntries  int64
	zeroedOK   bool // flag bit 2: GTE 1 means a zeroed grain
	compressed bool
	minSector  uint32 // entries below this point into the header/descriptor
	gts        tableCache[uint32]
	// streamMap replaces the grain directory when a stream file's tables had to be rebuilt by scanning.
	streamMap map[int64]uint32
}

func (m *sparseMapper) tableSpan() int64 { return m.gtEntries }

func (m *sparseMapper) tableEmpty(g int64) (bool, error) {
	if m.streamMap != nil {
		return false, nil
	}
	i := g / m.gtEntries
	if i >= int64(len(m.gd)) {
		return true, nil
	}
	return m.gd[i] == 0, nil
}

func (m *sparseMapper) lookup(g int64) (grainRef, error) {
	var gte uint32
	if m.streamMap != nil {
		gte = m.streamMap[g]
	} else {
		i := g / m.gtEntries
		if i >= int64(len(m.gd)) || m.gd[i] == 0 {
			return grainRef{state: allocNone}, nil
		}
		gt, err := m.table(m.gd[i])
		if err != nil {
			return grainRef{}, err
		}
		gte = gt[g%m.gtEntries]
	}
	switch {
	case gte == 0:
		return grainRef{state: allocNone}, nil
	case gte == 1 && m.zeroedOK:
		return grainRef{state: allocZero}, nil
	case gte < m.minSector:
		return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "grain table entry for grain %d points at sector %d, inside the header", g, gte)
	case int64(gte) >= m.fileSize/SectorSize+1:
		return grainRef{}, newErr(ErrDiskNeedsRepair, m.path, "grain table entry for grain %d points at sector %d, past the end of the file", g, gte)
	}
	return grainRef{state: allocData, off: int64(gte) * SectorSize, compressed: m.compressed}, nil
}

// table returns the grain table at a sector, from the cache or the file.
func (m *sparseMapper) table(sector uint32) ([]uint32, error) {
	if gt, ok := m.gts.get(sector); ok {
		return gt, nil
	}
	off := int64(sector) * SectorSize
	n := m.gtEntries * 4
	if sector < m.minSector || off+n > m.fileSize {
		return nil, newErr(ErrDiskNeedsRepair, m.path, "grain directory entry points at sector %d, outside the file's tables", sector)
	}
	buf := make([]byte, n)
	if _, err := m.f.ReadAt(buf, off); err != nil {
		return nil, wrapErr(ErrFileError, m.path, err, "read grain table at sector %d", sector)
	}
	gt := make([]uint32, m.gtEntries)
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	m.gts.put(sector, gt)
	return gt, nil
}

// readGD loads a grain directory; every entry is checked to lie inside the file.
func readGD(f *os.File, path string, fileSize int64, sector uint64, entries uint64, gtBytes int64) ([]uint32, error) {
	off := int64(sector) * SectorSize
	n := int64(entries) * 4
	if sector == 0 || sector > uint64(fileSize/SectorSize) || off+n > fileSize {
		return nil, fmt.Errorf("grain directory at sector %d (%d entries) lies outside the file (%d bytes)", sector, entries, fileSize)
	}
	gd := make([]uint32, entries)
	// Read in pieces: the directory is kept decoded, so only a piece of it is ever held twice.
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; done += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), n-done)]
		if _, err := f.ReadAt(chunk, off+done); err != nil {
			return nil, fmt.Errorf("read grain directory: %w", err)
		}
		for j := 0; j < len(chunk); j += 4 {
			i := (done + int64(j)) / 4
			gd[i] = binary.LittleEndian.Uint32(chunk[j:])
			if gd[i] != 0 && int64(gd[i])*SectorSize+gtBytes > fileSize {
				return nil, fmt.Errorf("grain directory entry %d points at sector %d, past the end of the file", i, gd[i])
			}
		}
	}
	return gd, nil
}

// openSparseExtent opens a KDMV file as one extent of size bytes (from the descriptor line).
// Its grain directory is charged to t and its tables kept in t's cache (unless writable); t may be nil.
func openSparseExtent(f *os.File, path string, fileSize int64, h *sparseHeader, size int64, line ExtentLine, writable bool, t *diskTables) (*grainExtent, error) {
	if code, err := h.validate(fileSize); err != nil {
		return nil, wrapErr(code, path, err, "invalid sparse extent")
	}
	compressed := h.Flags&flagCompressed != 0
	hdr := h
	m := &sparseMapper{
		path:       path,
		f:          f,
		fileSize:   fileSize,
		gtEntries:  int64(h.NumGTEsPerGT),
		zeroedOK:   h.Flags&flagZeroedGrain != 0,
		compressed: compressed,
		minSector:  1,
	}
	if h.DescOffset != 0 {
		m.minSector = uint32(min(h.DescOffset+h.DescSize, 1<<32-1))
	}
	m.gts = t.tables32(f, writable)
	format := "sparse"
	if compressed {
		format = "streamOptimized"
	}
	if h.GDOffset == gdAtEnd {
		footer, err := findStreamFooter(f, fileSize)
		if err != nil {
			return nil, wrapErr(ErrDiskNeedsRepair, path, err, "stream footer")
		}
		if footer != nil {
			if code, err := footer.validate(fileSize); err != nil {
				return nil, wrapErr(code, path, err, "invalid stream footer")
			}
			hdr = footer
		}
	}
	if hdr.GDOffset == gdAtEnd {
		// No footer: rebuild the grain map by walking the markers, as a last resort.
		sm, err := scanStream(f, fileSize, h)
		if err != nil {
			return nil, wrapErr(ErrDiskNeedsRepair, path, err, "stream has no footer and could not be scanned")
		}
		m.streamMap = sm
	} else {
		var err error
		entries := hdr.numGDEntries()
		if err := t.chargeGD(path, int64(entries)*4); err != nil {
			return nil, err
		}
		m.gd, err = readGD(f, path, fileSize, hdr.GDOffset, entries, m.gtEntries*4)
		if err != nil && hdr.Flags&flagRedundantGD != 0 && hdr.RGDOffset != 0 {
			// The primary directory is damaged: the redundant copy describes the same grains.
			gd, rerr := readGD(f, path, fileSize, hdr.RGDOffset, entries, m.gtEntries*4)
			if rerr == nil {
				m.gd, err = gd, nil
			}
		}
		if err != nil {
			return nil, wrapErr(ErrDiskNeedsRepair, path, err, "invalid sparse extent")
		}
	}
	e := &grainExtent{
		f:          f,
		fileSize:   fileSize,
		size:       size,
		grainBytes: int64(h.GrainSize) * SectorSize,
		m:          m,
		inf: ExtentInfo{
			ExtentLine:      line,
			Path:            path,
			Format:          format,
			Version:         h.Version,
			Flags:           h.Flags,
			GrainSectors:    int64(h.GrainSize),
			Compressed:      compressed,
			UncleanShutdown: h.Unclean,
		},
	}
	if compressed {
		cache, id := t.grainCache(f, writable)
		e.inflater = newGrainInflater(h.Flags&flagMarkers != 0, int64(h.Capacity)*SectorSize, cache, id)
	}
	if writable {
		if err := e.enableWrites(h, hdr); err != nil {
			return nil, err
		}
	}
	return e, nil
}
