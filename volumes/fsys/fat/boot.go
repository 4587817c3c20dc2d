package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

// ErrNotFAT reports a volume whose boot sector is not a usable FAT12/16/32 boot sector.
var ErrNotFAT = errors.New("not a FAT file system")

// Type is the FAT variant, decided by the BPB as the Linux kernel does.
type Type int

const (
	FAT12 Type = 12
	FAT16 Type = 16
	FAT32 Type = 32
)

// geometry is the validated layout of a FAT volume, all in bytes or clusters.
type geometry struct {
	typ            Type
	sectorSize     int64
	clusterSize    int64
	fatOffset      int64 // first byte of the FAT in use
	fatBytes       int64 // size of one FAT
	numFATs        int
	rootOffset     int64 // FAT12/16: fixed root directory region
	rootEntries    int64
	dataOffset     int64  // first byte of cluster 2
	clusters       uint32 // number of data clusters; valid cluster numbers are 2..clusters+1
	rootCluster    uint32 // FAT32 only
	volumeID       uint32
	hasVolumeID    bool
	bpbLabel       string
	dirty          bool
	usedBackupBoot bool
}

// maxCluster is the highest valid cluster number.
func (g *geometry) maxCluster() uint32 { return g.clusters + 1 }

// parseBoot validates a boot sector the way the Linux kernel's fat_fill_super does, with bounds checks
// against the image size.
func parseBoot(b []byte, size int64) (*geometry, error) {
	if len(b) < 512 {
		return nil, fmt.Errorf("%w: boot sector shorter than 512 bytes", ErrNotFAT)
	}
	le := binary.LittleEndian
	g := &geometry{}
	bps := int64(le.Uint16(b[11:]))
	if bps < 512 || bps > 4096 || bits.OnesCount64(uint64(bps)) != 1 {
		return nil, fmt.Errorf("%w: bytes per sector %d", ErrNotFAT, bps)
	}
	g.sectorSize = bps
	spc := int64(b[13])
	if spc == 0 || bits.OnesCount64(uint64(spc)) != 1 {
		return nil, fmt.Errorf("%w: sectors per cluster %d", ErrNotFAT, spc)
	}
	g.clusterSize = bps * spc
	reserved := int64(le.Uint16(b[14:]))
	if reserved == 0 {
		return nil, fmt.Errorf("%w: no reserved sectors", ErrNotFAT)
	}
	g.numFATs = int(b[16])
	if g.numFATs == 0 {
		return nil, fmt.Errorf("%w: number of FATs is 0", ErrNotFAT)
	}
	if media := b[21]; media != 0xF0 && media < 0xF8 {
		return nil, fmt.Errorf("%w: invalid media byte %#x", ErrNotFAT, media)
	}
	g.rootEntries = int64(le.Uint16(b[17:]))
	total := int64(le.Uint16(b[19:]))
	if total == 0 {
		total = int64(le.Uint32(b[32:]))
	}
	fatSectors := int64(le.Uint16(b[22:]))
	labelOff, idOff, sigOff := 43, 39, 38
	if fatSectors == 0 {
		// FAT32 BPB
		g.typ = FAT32
		fatSectors = int64(le.Uint32(b[36:]))
		if fatSectors == 0 {
			return nil, fmt.Errorf("%w: FAT size is 0", ErrNotFAT)
		}
		if v := le.Uint16(b[42:]); v != 0 {
			return nil, fmt.Errorf("%w: unsupported FAT32 version %#x", ErrNotFAT, v)
		}
		g.rootCluster = le.Uint32(b[44:])
		labelOff, idOff, sigOff = 71, 67, 66
	}
	g.fatBytes = fatSectors * bps
	g.fatOffset = reserved * bps
	g.rootOffset = g.fatOffset + int64(g.numFATs)*g.fatBytes
	rootBytes := (g.rootEntries*32 + bps - 1) / bps * bps
	g.dataOffset = g.rootOffset + rootBytes
	if total*bps <= g.dataOffset {
		return nil, fmt.Errorf("%w: %d sectors leave no room for data after %d bytes of metadata", ErrNotFAT, total, g.dataOffset)
	}
	clusters := (total*bps - g.dataOffset) / g.clusterSize
	if clusters <= 0 {
		return nil, fmt.Errorf("%w: no data clusters", ErrNotFAT)
	}
	if g.typ != FAT32 {
		if g.rootEntries == 0 {
			return nil, fmt.Errorf("%w: FAT12/16 volume with no root directory entries", ErrNotFAT)
		}
		g.typ = FAT16
		if clusters <= 4084 {
			g.typ = FAT12
		}
	} else if clusters > 0x0FFFFFF5 {
		return nil, fmt.Errorf("%w: %d clusters exceed FAT32's limit", ErrNotFAT, clusters)
	}
	if clusters > 0x0FFFFFF5 {
		clusters = 0x0FFFFFF5
	}
	// The FAT must hold an entry for every cluster (entries 0 and 1 are reserved).
	if entries := g.fatBytes * 8 / int64(g.typ); entries < clusters+2 {
		return nil, fmt.Errorf("%w: FAT of %d bytes holds %d entries, too few for %d clusters", ErrNotFAT, g.fatBytes, entries, clusters)
	}
	g.clusters = uint32(clusters)
	if g.typ == FAT32 {
		if g.rootCluster < 2 || g.rootCluster > g.maxCluster() {
			return nil, fmt.Errorf("%w: root directory cluster %d out of range", ErrNotFAT, g.rootCluster)
		}
		if flags := le.Uint16(b[40:]); flags&0x80 != 0 {
			// Mirroring off: only the active FAT is current.
			active := int(flags & 0x0F)
			if active >= g.numFATs {
				return nil, fmt.Errorf("%w: active FAT %d of %d", ErrNotFAT, active, g.numFATs)
			}
			g.fatOffset += int64(active) * g.fatBytes
		}
	}
	if g.rootOffset > size || g.dataOffset > size {
		return nil, fmt.Errorf("%w: image of %d bytes ends inside the metadata (data starts at %d)", ErrNotFAT, size, g.dataOffset)
	}
	if b[sigOff] == 0x29 {
		g.hasVolumeID = true
		g.volumeID = le.Uint32(b[idOff:])
		g.bpbLabel = strings.TrimRight(decodeOEM(b[labelOff:labelOff+11]), " ")
		if g.bpbLabel == "NO NAME" {
			g.bpbLabel = ""
		}
	}
	return g, nil
}

// readBoot reads and validates the boot sector; for FAT32 a broken primary falls back to the backup boot
// sector, which the BPB normally places at sector 6.
func readBoot(r io.ReaderAt, size int64) (*geometry, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading FAT boot sector: %w", err)
	}
	g, err := parseBoot(b, size)
	if err == nil {
		return g, readDirtyFlag(r, g)
	}
	for _, bps := range []int64{512, 1024, 2048, 4096} {
		if _, rerr := r.ReadAt(b, 6*bps); rerr != nil {
			continue
		}
		if int64(binary.LittleEndian.Uint16(b[11:])) != bps {
			continue
		}
		if bg, berr := parseBoot(b, size); berr == nil && bg.typ == FAT32 {
			bg.usedBackupBoot = true
			return bg, readDirtyFlag(r, bg)
		}
	}
	return nil, err
}

// readDirtyFlag reads the clean-shutdown bit the kernel keeps in FAT entry 1.
func readDirtyFlag(r io.ReaderAt, g *geometry) error {
	var b [4]byte
	if _, err := r.ReadAt(b[:], g.fatOffset); err != nil {
		return fmt.Errorf("reading FAT header: %w", err)
	}
	switch g.typ {
	case FAT16:
		g.dirty = binary.LittleEndian.Uint16(b[2:])&0x8000 == 0
	case FAT32:
		// Entry 1 is in bytes 4..7; read it separately.
		var e [4]byte
		if _, err := r.ReadAt(e[:], g.fatOffset+4); err != nil {
			return fmt.Errorf("reading FAT header: %w", err)
		}
		g.dirty = binary.LittleEndian.Uint32(e[:])&0x08000000 == 0
	}
	return nil
}
