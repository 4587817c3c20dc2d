package md

import (
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// raid10 is md's RAID 10: near copies side by side on consecutive members, far copies a stride further
// down shifted by near-copies members, or (offset layout) in the next stripe.
type raid10 struct {
	g       Geometry
	members []layout.Dev
	nc, fc  int64
	offset  bool
	farSet  int64
	stride  int64 // bytes between far copies on one member
	size    int64
}

// raid10 decodes the layout word: near copies in bits 0–7, far copies in 8–15, bit 16 for the offset
// variant, bits 17–18 for how far copies group members.
func (g Geometry) raid10() (*raid10, error) {
	if err := g.needChunk(); err != nil {
		return nil, err
	}
	l := g.Layout
	n := int64(g.Members)
	r := &raid10{g: g, nc: int64(l & 0xff), fc: int64(l >> 8 & 0xff), offset: l&(1<<16) != 0}
	if l>>19 != 0 {
		return nil, fmt.Errorf("%w: RAID 10 layout %#x", ErrUnsupported, l)
	}
	switch l >> 17 {
	case 0:
		r.farSet = n
	case 1:
		r.farSet = n / max(r.fc, 1)
	case 2:
		r.farSet = r.fc * r.nc
	}
	if r.nc < 1 || r.fc < 1 || r.nc*r.fc < 2 || r.nc*r.fc > n || r.farSet < 1 {
		return nil, fmt.Errorf("RAID 10 layout %#x over %d members", l, n)
	}
	devChunks := g.DevSize / g.Chunk
	arrayChunks := devChunks / r.fc * n / r.nc
	r.size = arrayChunks * g.Chunk
	used := (arrayChunks*r.nc*r.fc + n - 1) / n
	if r.offset {
		r.stride = g.Chunk
	} else {
		r.stride = used / r.fc * g.Chunk
	}
	return r, nil
}

func (r *raid10) Size() int64 { return r.size }

// copyOf finds the first copy of chunk c on a present member: the member and the byte offset of in.
func (r *raid10) copyOf(c, in int64) (int, int64, bool) {
	n := int64(r.g.Members)
	lastSetStart := (n/r.farSet - 1) * r.farSet
	lastSetSize := r.farSet + n%r.farSet
	cc := c * r.nc
	dev, stripe := cc%n, cc/n
	if r.offset {
		stripe *= r.fc
	}
	at := stripe*r.g.Chunk + in
	for i := int64(0); i < r.nc; i++ {
		d, s := dev, at
		if r.members[d] != nil {
			return int(d), s, true
		}
		for f := int64(1); f < r.fc; f++ {
			set := d / r.farSet
			d += r.nc
			if n%r.farSet != 0 && d > lastSetStart {
				d = (d-lastSetStart)%lastSetSize + lastSetStart
			} else {
				d = d%r.farSet + r.farSet*set
			}
			s += r.stride
			if r.members[d] != nil {
				return int(d), s, true
			}
		}
		dev++
		if dev >= n {
			dev = 0
			at += r.g.Chunk
		}
	}
	return 0, 0, false
}

func (r *raid10) ReadAt(p []byte, off int64) (int, error) {
	q, short, err := layout.Clip(p, off, r.size)
	if err != nil {
		return 0, err
	}
	n, err := pieces(q, off, r.g.Chunk, func(buf []byte, c, in int64) error {
		d, at, ok := r.copyOf(c, in)
		if !ok {
			return fmt.Errorf("raid10 chunk %d: every copy is on a missing member: %w", c, layout.ErrMissing)
		}
		if err := layout.ReadFull(r.members[d], buf, at); err != nil {
			return fmt.Errorf("raid10 member %d: %w", d, err)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return layout.Finish(n, short, nil)
}
