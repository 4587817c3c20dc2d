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
	// The kernel's tree checker takes 64 KiB stripes only; a tiny one would split every read into bytes.
	if c.length == 0 || c.stripeLen != 64<<10 || logical+c.length < logical {
		return chunk{}, 0, fmt.Errorf("%w: chunk at %d: length %d, stripe length %d", ErrCorrupt, logical, c.length, c.stripeLen)
	}
	if c.typ&bgRAID10 != 0 && (c.subStripes == 0 || uint64(n)%c.subStripes != 0) {
		return chunk{}, 0, fmt.Errorf("%w: RAID10 chunk at %d: %d stripes, %d sub-stripes", ErrCorrupt, logical, n, c.subStripes)
	}
	if c.typ&(bgRAID5|bgRAID6) != 0 && uint64(n) <= c.parityCount() {
		return chunk{}, 0, fmt.Errorf("%w: RAID5/6 chunk at %d has %d stripes", ErrCorrupt, logical, n)
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
// whose device is present (RAID5/6: rebuilt from parity when its device is absent).
func (m *chunkMap) read(p []byte, logical uint64) error { return m.readMirror(p, logical, -1) }

// maxMirrors bounds the ways a block is read: RAID1C4 keeps four copies.
const maxMirrors = 4

// mirrors is how many independent ways logical reads: the copies of a mirrored profile, or for
// RAID5/6 the data stripe, its rebuild from P and (RAID6) its rebuild from Q.
func (m *chunkMap) mirrors(logical uint64) int {
	c, err := m.find(logical)
	if err != nil {
		return 1
	}
	switch {
	case c.typ&bgRAID5 != 0:
		return 2
	case c.typ&bgRAID6 != 0:
		return 3
	case c.typ&bgRAID0 != 0:
		return 1
	case c.typ&bgRAID10 != 0:
		return int(min(c.subStripes, maxMirrors))
	}
	return min(len(c.stripes), maxMirrors)
}

// readMirror is read from one way of mirrors (mirror >= 0) or from the first that reads (-1): a
// caller that finds a block damaged (a checksum) tries the next way, as the kernel does.
func (m *chunkMap) readMirror(p []byte, logical uint64, mirror int) error {
	for len(p) > 0 {
		c, err := m.find(logical)
		if err != nil {
			return err
		}
		off := logical - c.logical
		n := min(uint64(len(p)), c.length-off)
		if c.typ&(bgRAID5|bgRAID6) != 0 {
			n = min(n, c.stripeLen-off%c.stripeLen)
			err = m.readParity(p[:n], c, off, max(mirror, 0))
		} else {
			copies, within := c.place(off)
			n = min(n, within)
			switch {
			case mirror < 0:
				err = m.readCopy(p[:n], copies)
			case mirror < len(copies):
				err = m.readDev(p[:n], copies[mirror])
			default:
				err = fmt.Errorf("no copy %d of %d", mirror, len(copies))
			}
		}
		if err != nil {
			return fmt.Errorf("logical %d: %w", logical, err)
		}
		p, logical = p[n:], logical+n
	}
	return nil
}

// readCopy reads p from the first of its copies that reads.
func (m *chunkMap) readCopy(p []byte, copies []stripe) error {
	var lastErr error
	for _, s := range copies {
		if lastErr = m.readDev(p, s); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

// readDev reads p from one device at s.offset; errAbsent when the set lacks the device.
func (m *chunkMap) readDev(p []byte, s stripe) error {
	d, ok := m.devs[s.devid]
	if !ok {
		return fmt.Errorf("device %d: %w", s.devid, errAbsent)
	}
	if s.offset+uint64(len(p)) > uint64(d.size) || s.offset+uint64(len(p)) < s.offset {
		return fmt.Errorf("%w: device %d read at %d past its %d bytes", ErrCorrupt, s.devid, s.offset, d.size)
	}
	if _, err := d.r.ReadAt(p, int64(s.offset)); err != nil {
		return fmt.Errorf("device %d: %w", s.devid, err)
	}
	return nil
}

// place maps byte off of the chunk to its copies on the devices and says how many bytes stay in
// the same stripe from there.
func (c *chunk) place(off uint64) ([]stripe, uint64) {
	n := uint64(len(c.stripes))
	switch {
	case c.typ&bgRAID0 != 0:
		nr, in := off/c.stripeLen, off%c.stripeLen
		s := c.stripes[nr%n]
		return []stripe{{s.devid, s.offset + nr/n*c.stripeLen + in}}, c.stripeLen - in
	case c.typ&bgRAID10 != 0:
		factor := n / c.subStripes
		nr, in := off/c.stripeLen, off%c.stripeLen
		first := nr % factor * c.subStripes
		var out []stripe
		for k := uint64(0); k < c.subStripes; k++ {
			s := c.stripes[first+k]
			out = append(out, stripe{s.devid, s.offset + nr/factor*c.stripeLen + in})
		}
		return out, c.stripeLen - in
	}
	// SINGLE, DUP, RAID1, RAID1C3/4: every stripe is a full copy.
	var out []stripe
	for _, s := range c.stripes {
		out = append(out, stripe{s.devid, s.offset + off})
	}
	return out, c.length - off
}
