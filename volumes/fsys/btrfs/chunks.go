package btrfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// Block group profile bits of a chunk's type.
const (
	bgRAID0   = 1 << 3
	bgRAID1   = 1 << 4
	bgDUP     = 1 << 5
	bgRAID10  = 1 << 6
	bgRAID5   = 1 << 7
	bgRAID6   = 1 << 8
	bgRAID1C3 = 1 << 9
	bgRAID1C4 = 1 << 10
)

const chunkItemSize = 48 // before the stripes
const stripeSize = 32

type stripe struct {
	devid  uint64
	offset uint64
}

// chunk maps [logical, logical+length) onto device stripes.
type chunk struct {
	logical, length uint64
	stripeLen       uint64
	typ             uint64
	subStripes      uint64
	stripes         []stripe
}

// parseChunk reads a chunk item; b holds at least the item.
func parseChunk(logical uint64, b []byte) (chunk, int, error) {
	if len(b) < chunkItemSize {
		return chunk{}, 0, fmt.Errorf("%w: chunk item of %d bytes", ErrCorrupt, len(b))
	}
	le64 := func(o int) uint64 { return binary.LittleEndian.Uint64(b[o:]) }
	n := int(binary.LittleEndian.Uint16(b[44:]))
	c := chunk{logical: logical, length: le64(0), stripeLen: le64(16), typ: le64(24),
		subStripes: uint64(binary.LittleEndian.Uint16(b[46:]))}
	size := chunkItemSize + n*stripeSize
	if n == 0 || len(b) < size {
		return chunk{}, 0, fmt.Errorf("%w: chunk at %d has %d stripes in %d bytes", ErrCorrupt, logical, n, len(b))
	}
	if c.length == 0 || c.stripeLen == 0 || c.stripeLen&(c.stripeLen-1) != 0 || logical+c.length < logical {
		return chunk{}, 0, fmt.Errorf("%w: chunk at %d: length %d, stripe length %d", ErrCorrupt, logical, c.length, c.stripeLen)
	}
	if c.typ&bgRAID10 != 0 && (c.subStripes == 0 || uint64(n)%c.subStripes != 0) {
		return chunk{}, 0, fmt.Errorf("%w: RAID10 chunk at %d: %d stripes, %d sub-stripes", ErrCorrupt, logical, n, c.subStripes)
	}
	for i := 0; i < n; i++ {
		s := b[chunkItemSize+i*stripeSize:]
		c.stripes = append(c.stripes, stripe{devid: binary.LittleEndian.Uint64(s), offset: binary.LittleEndian.Uint64(s[8:])})
	}
	return c, size, nil
}

// chunkMap is the logical address space: chunks sorted by start, and the devices by id.
type chunkMap struct {
	chunks []chunk
	devs   map[uint64]device
}

type device struct {
	r    io.ReaderAt
	size int64
}

func (m *chunkMap) add(c chunk) {
	i := sort.Search(len(m.chunks), func(i int) bool { return m.chunks[i].logical >= c.logical })
	if i < len(m.chunks) && m.chunks[i].logical == c.logical {
		m.chunks[i] = c
		return
	}
	m.chunks = append(m.chunks, chunk{})
	copy(m.chunks[i+1:], m.chunks[i:])
	m.chunks[i] = c
}

func (m *chunkMap) find(logical uint64) (*chunk, error) {
	i := sort.Search(len(m.chunks), func(i int) bool { return m.chunks[i].logical > logical }) - 1
	if i < 0 || logical-m.chunks[i].logical >= m.chunks[i].length {
		return nil, fmt.Errorf("%w: logical address %d is in no chunk", ErrCorrupt, logical)
	}
	return &m.chunks[i], nil
}

// read fills p from logical address logical, piece by piece across stripes, from the first copy
// whose device is present.
func (m *chunkMap) read(p []byte, logical uint64) error {
	for len(p) > 0 {
		c, err := m.find(logical)
		if err != nil {
			return err
		}
		off := logical - c.logical
		n := min(uint64(len(p)), c.length-off)
		copies, within, err := c.place(off)
		if err != nil {
			return err
		}
		n = min(n, within)
		if err := m.readCopy(p[:n], copies); err != nil {
			return fmt.Errorf("logical %d: %w", logical, err)
		}
		p, logical = p[n:], logical+n
	}
	return nil
}

func (m *chunkMap) readCopy(p []byte, copies []stripe) error {
	var lastErr error
	for _, s := range copies {
		d, ok := m.devs[s.devid]
		if !ok {
			lastErr = fmt.Errorf("device %d is not in the set", s.devid)
			continue
		}
		if s.offset+uint64(len(p)) > uint64(d.size) {
			lastErr = fmt.Errorf("%w: device %d read at %d past its %d bytes", ErrCorrupt, s.devid, s.offset, d.size)
			continue
		}
		if _, err := d.r.ReadAt(p, int64(s.offset)); err != nil {
			lastErr = err
			continue
		}
		return nil
	}
	return lastErr
}

// place maps byte off of the chunk to its copies on the devices and says how many bytes stay in
// the same stripe from there.
func (c *chunk) place(off uint64) ([]stripe, uint64, error) {
	n := uint64(len(c.stripes))
	switch {
	case c.typ&(bgRAID5|bgRAID6) != 0:
		return c.parityPlace(off)
	case c.typ&bgRAID0 != 0:
		nr, in := off/c.stripeLen, off%c.stripeLen
		s := c.stripes[nr%n]
		return []stripe{{s.devid, s.offset + nr/n*c.stripeLen + in}}, c.stripeLen - in, nil
	case c.typ&bgRAID10 != 0:
		factor := n / c.subStripes
		nr, in := off/c.stripeLen, off%c.stripeLen
		first := nr % factor * c.subStripes
		var out []stripe
		for k := uint64(0); k < c.subStripes; k++ {
			s := c.stripes[first+k]
			out = append(out, stripe{s.devid, s.offset + nr/factor*c.stripeLen + in})
		}
		return out, c.stripeLen - in, nil
	}
	// SINGLE, DUP, RAID1, RAID1C3/4: every stripe is a full copy.
	var out []stripe
	for _, s := range c.stripes {
		out = append(out, stripe{s.devid, s.offset + off})
	}
	return out, c.length - off, nil
}

// parityPlace maps RAID5/6 data with every device present (no rebuild from parity): row r of the
// chunk starts its data on stripe r mod n and the data stripes follow in order, parity after them.
func (c *chunk) parityPlace(off uint64) ([]stripe, uint64, error) {
	n := uint64(len(c.stripes))
	parity := uint64(1)
	if c.typ&bgRAID6 != 0 {
		parity = 2
	}
	if n <= parity {
		return nil, 0, fmt.Errorf("%w: RAID5/6 chunk with %d stripes", ErrCorrupt, n)
	}
	data := n - parity
	nr, in := off/c.stripeLen, off%c.stripeLen
	row, k := nr/data, nr%data
	s := c.stripes[(row+k)%n]
	return []stripe{{s.devid, s.offset + row*c.stripeLen + in}}, c.stripeLen - in, nil
}
