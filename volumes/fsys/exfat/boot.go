package exfat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotExFAT reports a volume whose boot region is not a usable exFAT boot region.
var ErrNotExFAT = errors.New("not an exFAT file system")

// ErrCorrupt marks on-disk structures that contradict each other or the volume's bounds.
var ErrCorrupt = errors.New("corrupt exFAT file system")

// geometry is the validated layout of an exFAT volume.
type geometry struct {
	sectorSize  int64
	clusterSize int64
	fatOffset   int64 // bytes, active FAT
	fatBytes    int64
	heapOffset  int64 // bytes, cluster 2
	clusters    uint32
	rootCluster uint32
	serial      uint32
	revision    uint16
	flags       uint16
	backupBoot  bool
}

func (g *geometry) maxCluster() uint32 { return g.clusters + 1 }

// bootChecksum is the exFAT boot-region checksum over sectors 0–10, skipping VolumeFlags and
// PercentInUse, which change without the checksum being rewritten.
func bootChecksum(region []byte) uint32 {
	var sum uint32
	for i, b := range region {
		if i == 106 || i == 107 || i == 112 {
			continue
		}
		sum = (sum>>1 | sum<<31) + uint32(b)
	}
	return sum
}

// parseBootRegion validates the 12-sector boot region starting at region[0].
func parseBootRegion(b []byte, size int64) (*geometry, error) {
	if len(b) < 512 {
		return nil, fmt.Errorf("%w: boot sector shorter than 512 bytes", ErrNotExFAT)
	}
	if string(b[3:11]) != "EXFAT   " {
		return nil, fmt.Errorf("%w: no EXFAT signature", ErrNotExFAT)
	}
	for _, c := range b[11:64] {
		if c != 0 {
			return nil, fmt.Errorf("%w: MustBeZero field is not zero", ErrNotExFAT)
		}
	}
	le := binary.LittleEndian
	if le.Uint16(b[510:]) != 0xAA55 {
		return nil, fmt.Errorf("%w: boot signature missing", ErrNotExFAT)
	}
	bpss, spcs := b[108], b[109]
	if bpss < 9 || bpss > 12 {
		return nil, fmt.Errorf("%w: bytes-per-sector shift %d", ErrNotExFAT, bpss)
	}
	if int(spcs) > 25-int(bpss) {
		return nil, fmt.Errorf("%w: sectors-per-cluster shift %d", ErrNotExFAT, spcs)
	}
	g := &geometry{sectorSize: 1 << bpss, clusterSize: 1 << (int(bpss) + int(spcs))}
	if int64(len(b)) < 12*g.sectorSize {
		return nil, fmt.Errorf("%w: boot region shorter than 12 sectors", ErrNotExFAT)
	}
	want := bootChecksum(b[:11*g.sectorSize])
	for off := 11 * g.sectorSize; off < 12*g.sectorSize; off += 4 {
		if got := le.Uint32(b[off:]); got != want {
			return nil, fmt.Errorf("%w: boot checksum %#08x, computed %#08x", ErrNotExFAT, got, want)
		}
	}
	volSectors := le.Uint64(b[72:])
	fatOff, fatLen := int64(le.Uint32(b[80:])), int64(le.Uint32(b[84:]))
	heapOff := int64(le.Uint32(b[88:]))
	g.clusters = le.Uint32(b[92:])
	g.rootCluster = le.Uint32(b[96:])
	g.serial = le.Uint32(b[100:])
	g.revision = le.Uint16(b[104:])
	g.flags = le.Uint16(b[106:])
	nFATs := b[110]
	if g.revision>>8 != 1 {
		return nil, fmt.Errorf("%w: unsupported revision %d.%d", ErrNotExFAT, g.revision>>8, g.revision&0xFF)
	}
	if nFATs != 1 && nFATs != 2 {
		return nil, fmt.Errorf("%w: %d FATs", ErrNotExFAT, nFATs)
	}
	if fatOff < 24 || fatLen == 0 || heapOff < fatOff+fatLen*int64(nFATs) {
		return nil, fmt.Errorf("%w: FAT at sector %d (%d sectors ×%d) overlaps the boot region or cluster heap at %d", ErrNotExFAT, fatOff, fatLen, nFATs, heapOff)
	}
	if volSectors > uint64(1)<<(63-bpss) || uint64(heapOff) >= volSectors {
		return nil, fmt.Errorf("%w: volume of %d sectors, cluster heap at %d", ErrNotExFAT, volSectors, heapOff)
	}
	if g.clusters == 0 || g.clusters > 0xFFFFFFF5 || uint64(g.clusters) > (volSectors-uint64(heapOff))>>spcs {
		return nil, fmt.Errorf("%w: %d clusters do not fit the volume", ErrNotExFAT, g.clusters)
	}
	g.fatBytes = fatLen * g.sectorSize
	if g.fatBytes/4 < int64(g.clusters)+2 {
		return nil, fmt.Errorf("%w: FAT of %d bytes is too small for %d clusters", ErrNotExFAT, g.fatBytes, g.clusters)
	}
	g.fatOffset = fatOff * g.sectorSize
	if nFATs == 2 && g.flags&1 != 0 {
		g.fatOffset += g.fatBytes // ActiveFat: the second FAT is current
	}
	g.heapOffset = heapOff * g.sectorSize
	if g.rootCluster < 2 || g.rootCluster > g.maxCluster() {
		return nil, fmt.Errorf("%w: root directory cluster %d out of range", ErrNotExFAT, g.rootCluster)
	}
	if g.fatOffset+g.fatBytes > size || g.heapOffset > size {
		return nil, fmt.Errorf("%w: image of %d bytes ends inside the metadata (cluster heap at %d)", ErrNotExFAT, size, g.heapOffset)
	}
	return g, nil
}

// readBoot reads the main boot region, falling back to the backup region (sectors 12–23) when the main
// one fails validation. The error reported is the main region's.
func readBoot(r io.ReaderAt, size int64) (*geometry, error) {
	g, mainErr := readRegion(r, 0, 0, size)
	if mainErr == nil {
		return g, nil
	}
	for _, ss := range []int64{512, 1024, 2048, 4096} {
		if g, err := readRegion(r, 12*ss, ss, size); err == nil {
			g.backupBoot = true
			return g, nil
		}
	}
	return nil, mainErr
}

// readRegion reads a boot region at off; wantSS, when set, is the sector size the region must declare.
func readRegion(r io.ReaderAt, off, wantSS, size int64) (*geometry, error) {
	hdr := make([]byte, 512)
	if _, err := r.ReadAt(hdr, off); err != nil {
		return nil, fmt.Errorf("reading exFAT boot sector: %w", err)
	}
	shift := hdr[108]
	if shift < 9 || shift > 12 {
		return parseBootRegion(hdr, size) // reports the bad field
	}
	ss := int64(1) << shift
	if wantSS != 0 && ss != wantSS {
		return nil, fmt.Errorf("%w: backup sector size mismatch", ErrNotExFAT)
	}
	b := make([]byte, 12*ss)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading exFAT boot region: %w", err)
	}
	return parseBootRegion(b, size)
}
