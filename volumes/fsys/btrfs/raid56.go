package btrfs

import (
	"errors"
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/internal/parity"
)

// errAbsent marks a read from a device the set does not hold (a degraded filesystem).
var errAbsent = errors.New("device is not in the set")

// parityCount is the number of parity stripes per row of a RAID5 (P) or RAID6 (P and Q) chunk.
func (c *chunk) parityCount() uint64 {
	if c.typ&bgRAID6 != 0 {
		return 2
	}
	return 1
}

// readParity fills p, which stays inside one stripe element, from chunk offset off of a RAID5/6
// chunk. Row r of the chunk puts data element k on stripe (r+k) mod n, P after the data and Q after
// P, as the kernel rotates them; an element on an absent device is rebuilt from the rest of its row.
// mirror 1 rebuilds the element even when its device is present (from P), mirror 2 without P too
// (from Q): the ways to read a block whose first read was damaged.
func (m *chunkMap) readParity(p []byte, c *chunk, off uint64, mirror int) error {
	n := uint64(len(c.stripes))
	data := n - c.parityCount()
	nr, in := off/c.stripeLen, off%c.stripeLen
	row, k := nr/data, nr%data
	at := func(i uint64) stripe { // element i of the row: data 0..data-1, then P, then Q
		s := c.stripes[(row+i)%n]
		return stripe{s.devid, s.offset + row*c.stripeLen + in}
	}
	if mirror >= 2 && data+1 >= n {
		return fmt.Errorf("no rebuild %d of a RAID5 element", mirror)
	}
	present := func(i uint64) bool {
		_, ok := m.devs[at(i).devid]
		return ok && !(i == k && mirror >= 1) && !(i == data && mirror >= 2)
	}
	err := fmt.Errorf("rebuild %d: %w", mirror, errAbsent)
	if mirror == 0 {
		if err = m.readDev(p, at(k)); !errors.Is(err, errAbsent) {
			return err
		}
	}
	lost := []int{int(k)}
	for j := uint64(0); j < data; j++ {
		if !present(j) && j != k {
			lost = append(lost, int(j))
		}
	}
	haveP := present(data)
	haveQ := data+1 < n && present(data+1)
	useP, useQ, ok := parity.Plan(len(lost), haveP, haveQ)
	if !ok {
		return fmt.Errorf("row %d of the chunk at %d lost %d data stripes and its parity: %w", row, c.logical, len(lost), err)
	}
	var pSum, qSum []byte
	if useP {
		pSum = make([]byte, len(p))
		if err := m.readDev(pSum, at(data)); err != nil {
			return fmt.Errorf("parity P: %w", err)
		}
	}
	if useQ {
		qSum = make([]byte, len(p))
		if err := m.readDev(qSum, at(data+1)); err != nil {
			return fmt.Errorf("parity Q: %w", err)
		}
	}
	tmp := make([]byte, len(p))
	for j := uint64(0); j < data; j++ {
		s := at(j)
		if j == k || !present(j) {
			continue
		}
		if err := m.readDev(tmp, s); err != nil {
			return err
		}
		parity.Add(pSum, qSum, tmp, int(j))
	}
	if err := parity.Solve(p, lost, pSum, qSum); err != nil {
		return fmt.Errorf("row %d of the chunk at %d: %w", row, c.logical, err)
	}
	return nil
}
