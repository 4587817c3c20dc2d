package md

import (
	"errors"
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// ErrUnsupported is returned (wrapped) for arrays whose level or layout this reader does not know.
var ErrUnsupported = errors.New("md layout not supported")

// RAID-5/6 parity placements (md's "algorithm" numbers).
const (
	leftAsymmetric  = 0
	rightAsymmetric = 1
	leftSymmetric   = 2
	rightSymmetric  = 3
	parity0         = 4
	parityN         = 5
)

// LayoutName names a RAID-4/5/6 or RAID-10 layout as mdadm prints it.
func LayoutName(level int, l uint32) string {
	switch level {
	case 5, 6:
		names := []string{"left-asymmetric", "right-asymmetric", "left-symmetric", "right-symmetric", "parity-first", "parity-last"}
		if int(l) < len(names) {
			return names[l]
		}
	case 10:
		nc, fc := l&0xff, (l>>8)&0xff
		var s string
		if nc > 1 {
			s = fmt.Sprintf("near=%d", nc)
		}
		if fc > 1 {
			if s != "" {
				s += ", "
			}
			kind := "far"
			if l&(1<<16) != 0 {
				kind = "offset"
			}
			s += fmt.Sprintf("%s=%d", kind, fc)
		}
		return s
	}
	return fmt.Sprintf("%d", l)
}

// Geometry is an array's shape, as its superblocks give it.
type Geometry struct {
	Level   int
	Layout  uint32
	Chunk   int64 // bytes
	Members int   // raid disks
	DevSize int64 // bytes used on each member (levels 1, 4, 5, 6, 10)
}

// ArraySize is the array size md gives a geometry, with memberData the bytes of data area on each
// member (linear and RAID 0 use all of it).
func (g Geometry) ArraySize(memberData []int64) (int64, error) {
	n := int64(g.Members)
	switch g.Level {
	case LevelLinear:
		var s int64
		for _, d := range memberData {
			s += g.roundChunk(d)
		}
		return s, nil
	case 0:
		if err := g.needChunk(); err != nil {
			return 0, err
		}
		var s int64
		for _, d := range memberData {
			if g.roundChunk(d) != g.roundChunk(memberData[0]) {
				return 0, fmt.Errorf("%w: RAID 0 over members of different sizes (several zones)", ErrUnsupported)
			}
			s += g.roundChunk(d)
		}
		return s, nil
	case 1:
		return g.DevSize, nil
	case 4, 5, 6:
		if err := g.needChunk(); err != nil {
			return 0, err
		}
		parity := int64(1)
		if g.Level == 6 {
			parity = 2
		}
		if n <= parity || (g.Level == 6 && n < 4) {
			return 0, fmt.Errorf("RAID %d with %d members", g.Level, n)
		}
		return g.roundChunk(g.DevSize) * (n - parity), nil
	case 10:
		r, err := g.raid10()
		if err != nil {
			return 0, err
		}
		return r.size, nil
	}
	return 0, fmt.Errorf("%w: level %s", ErrUnsupported, LevelName(g.Level))
}

func (g Geometry) roundChunk(b int64) int64 {
	if g.Chunk > 0 {
		return b - b%g.Chunk
	}
	return b - b%512
}

func (g Geometry) needChunk() error {
	if g.Chunk < 512 || g.Chunk&(g.Chunk-1) != 0 {
		return fmt.Errorf("chunk size %d is not a power of two of at least 512", g.Chunk)
	}
	return nil
}

// Build makes the array device out of its members' data areas, indexed by role (nil for a missing
// member). It fails when too many members are missing for the level.
func (g Geometry) Build(members []layout.Dev) (layout.Dev, error) {
	if len(members) != g.Members {
		return nil, fmt.Errorf("%d members for %d raid disks", len(members), g.Members)
	}
	missing := 0
	for _, m := range members {
		if m == nil {
			missing++
		}
	}
	data := make([]int64, len(members))
	for i, m := range members {
		if m != nil {
			data[i] = m.Size()
		}
	}
	switch g.Level {
	case LevelLinear, 0:
		if missing > 0 {
			return nil, fmt.Errorf("%d of %d members missing: %w", missing, g.Members, layout.ErrMissing)
		}
		size, err := g.ArraySize(data)
		if err != nil {
			return nil, err
		}
		parts := make([]layout.Dev, len(members))
		for i, m := range members {
			if parts[i], err = layout.Slice(m, 0, g.roundChunk(m.Size())); err != nil {
				return nil, err
			}
		}
		if g.Level == LevelLinear {
			return layout.Concat(parts), nil
		}
		return layout.Stripe(parts, g.Chunk, size)
	}
	size, err := g.ArraySize(data)
	if err != nil {
		return nil, err
	}
	need := g.DevSize
	if g.Level != 1 {
		need = g.roundChunk(g.DevSize)
	}
	for i, m := range members {
		if m != nil && m.Size() < need {
			return nil, fmt.Errorf("member %d holds %d bytes of data, the array uses %d", i, m.Size(), need)
		}
	}
	switch g.Level {
	case 1:
		for _, m := range members {
			if m != nil {
				return layout.Slice(m, 0, size)
			}
		}
		return nil, fmt.Errorf("all %d mirrors missing: %w", g.Members, layout.ErrMissing)
	case 10:
		r, _ := g.raid10()
		r.members = members
		// Every chunk needs one present copy: check the first stripe of every starting device, which
		// covers every combination of devices a chunk's copies use.
		for c := int64(0); c < int64(g.Members)*r.fc*2 && c*g.Chunk < size; c++ {
			if _, _, ok := r.copyOf(c, 0); !ok {
				return nil, fmt.Errorf("no copy of chunk %d survives: %w", c, layout.ErrMissing)
			}
		}
		return r, nil
	default:
		p := &parityArray{g: g, members: members, size: size}
		if g.Level == 4 {
			p.algorithm = parityN
		} else {
			p.algorithm = int(g.Layout)
			if p.algorithm > parityN {
				return nil, fmt.Errorf("%w: RAID %d layout %d", ErrUnsupported, g.Level, g.Layout)
			}
		}
		p.parity = 1
		if g.Level == 6 {
			p.parity = 2
		}
		if missing > p.parity {
			return nil, fmt.Errorf("%d of %d members missing, RAID %d survives %d: %w", missing, g.Members, g.Level, p.parity, layout.ErrMissing)
		}
		return p, nil
	}
}

// pieces calls fn for each chunk-bounded piece of the read [off, off+len(q)).
func pieces(q []byte, off, chunk int64, fn func(buf []byte, chunkNo, in int64) error) (int, error) {
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		c, in := pos/chunk, pos%chunk
		m := min(int64(len(q)-done), chunk-in)
		if err := fn(q[done:done+int(m)], c, in); err != nil {
			return done, err
		}
		done += int(m)
	}
	return done, nil
}
