package volumes

import (
	"github.com/vmdkmount/vmdkmount/volumes/layout"
	"github.com/vmdkmount/vmdkmount/volumes/mbr"
	"github.com/vmdkmount/vmdkmount/volumes/probe"
)

// sectorSizes are the logical sector sizes a disk is probed with, most common first: what GPT headers
// are looked for with and what MBR tables are read with. Options.SectorSize narrows it to one.
func sectorSizes(opts Options) []int {
	if opts.SectorSize != 0 {
		return []int{opts.SectorSize}
	}
	return []int{512, 4096}
}

// readMBR reads the MBR of d with each probed sector size and keeps the reading that fits the disk
// best. An MBR does not say its unit, and a VMDK does not say the guest's sector size, so the table
// itself is the witness: with the wrong unit, entries run past the end of the disk, EBRs lack their
// 55AA and partitions start where no filesystem does. Ties go to the first (512-byte) size.
func readMBR(d Disk, size int64, sizes []int) (*mbr.Table, int, error) {
	var best *mbr.Table
	bestSS, bestScore := 0, 0
	var firstErr error
	for _, ss := range sizes {
		t, err := mbr.Read(d, ss, uint64(size)/uint64(ss))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if t.Protective {
			return t, ss, nil // a GPT disk: its header finds the sector size
		}
		if score := mbrFit(d, t, ss); best == nil || score > bestScore {
			best, bestSS, bestScore = t, ss, score
		}
	}
	if best == nil {
		return nil, sizes[0], firstErr
	}
	return best, bestSS, nil
}

// mbrFit scores how well a table read with sector size ss fits disk d: each problem costs, each
// partition whose start holds a recognised filesystem or container counts.
func mbrFit(d Disk, t *mbr.Table, ss int) int {
	score := -4 * len(t.Problems)
	for _, p := range t.Partitions {
		if p.Extended {
			continue
		}
		off, n := int64(p.Start)*int64(ss), int64(p.Sectors)*int64(ss)
		dev, err := layout.Slice(d, off, n)
		if err != nil {
			score -= 4
			continue
		}
		if probe.Detect(dev, n).Type != "" {
			score++
		}
	}
	return score
}
