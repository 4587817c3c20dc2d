package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// run maps length logical blocks starting at logical onto physical blocks starting at physical.
// physical 0 never occurs in a run; unwritten runs read as zeros like holes.
type run struct {
	logical   uint64
	physical  uint64
	length    uint64
	unwritten bool
}

const (
	extentMagic    = 0xF30A
	maxExtentDepth = 5
	extentEntry    = 12
)

var errCorrupt = errors.New("corrupt")

// extentHeader is the 12-byte header of every extent tree node.
type extentHeader struct {
	entries, max, depth uint16
}

func parseExtentHeader(b []byte) (extentHeader, error) {
	le := binary.LittleEndian
	if len(b) < extentEntry {
		return extentHeader{}, fmt.Errorf("extent node of %d bytes: %w", len(b), errCorrupt)
	}
	if m := le.Uint16(b[0:]); m != extentMagic {
		return extentHeader{}, fmt.Errorf("extent node magic %#04x: %w", m, errCorrupt)
	}
	h := extentHeader{entries: le.Uint16(b[2:]), max: le.Uint16(b[4:]), depth: le.Uint16(b[6:])}
	if int(h.entries) > (len(b)-extentEntry)/extentEntry || h.entries > h.max {
		return h, fmt.Errorf("extent node has %d entries (max %d) in %d bytes: %w", h.entries, h.max, len(b), errCorrupt)
	}
	if h.depth > maxExtentDepth {
		return h, fmt.Errorf("extent tree depth %d: %w", h.depth, errCorrupt)
	}
	return h, nil
}

// extentWalker flattens an extent tree into runs, checking that logical blocks only grow (which also
// stops a tree whose index points back into itself) and that every block lies inside the volume.
type extentWalker struct {
	f        *FS
	runs     []run
	next     uint64 // first logical block not yet covered
	maxRuns  int
	nodes    int
	maxNodes int
}

func (f *FS) extentRuns(root []byte) ([]run, error) {
	w := &extentWalker{f: f, maxRuns: int(f.volumeBlocks()), maxNodes: int(f.volumeBlocks())}
	h, err := parseExtentHeader(root)
	if err != nil {
		return nil, err
	}
	if err := w.node(root, h, h.depth); err != nil {
		return nil, err
	}
	return w.runs, nil
}

func (w *extentWalker) node(b []byte, h extentHeader, wantDepth uint16) error {
	le := binary.LittleEndian
	if h.depth != wantDepth {
		return fmt.Errorf("extent node depth %d where %d expected: %w", h.depth, wantDepth, errCorrupt)
	}
	w.nodes++
	if w.nodes > w.maxNodes {
		return fmt.Errorf("extent tree has more nodes than the volume has blocks: %w", errCorrupt)
	}
	for i := 0; i < int(h.entries); i++ {
		e := b[extentEntry*(i+1) : extentEntry*(i+2)]
		logical := uint64(le.Uint32(e[0:]))
		if logical < w.next {
			return fmt.Errorf("extent at logical block %d overlaps the previous one ending at %d: %w", logical, w.next, errCorrupt)
		}
		if h.depth == 0 {
			n := uint64(le.Uint16(e[4:]))
			unwritten := false
			if n > 32768 {
				n -= 32768
				unwritten = true
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if n == 0 {
				continue
			}
			if err := w.f.checkRange(phys, n); err != nil {
				return err
			}
			if len(w.runs) >= w.maxRuns {
				return fmt.Errorf("more extents than the volume has blocks: %w", errCorrupt)
			}
			w.runs = append(w.runs, run{logical: logical, physical: phys, length: n, unwritten: unwritten})
			w.next = logical + n
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		if err := w.f.checkRange(child, 1); err != nil {
			return err
		}
		buf := make([]byte, w.f.sb.blockSize)
		if err := w.f.readBlock(buf, child); err != nil {
			return err
		}
		ch, err := parseExtentHeader(buf)
		if err != nil {
			return fmt.Errorf("extent index block %d: %w", child, err)
		}
		if err := w.node(buf, ch, h.depth-1); err != nil {
			return err
		}
		// An index entry's start bounds what follows it, so the next sibling must begin later.
		if w.next < logical+1 {
			w.next = logical + 1
		}
	}
	return nil
}

// checkRange rejects a run of blocks that does not lie inside the volume.
func (f *FS) checkRange(phys, n uint64) error {
	total := f.volumeBlocks()
	if phys == 0 || phys >= total || n > total-phys {
		return fmt.Errorf("blocks %d+%d outside the %d-block volume: %w", phys, n, total, errCorrupt)
	}
	return nil
}
