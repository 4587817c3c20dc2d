package md

import (
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/internal/parity"
	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// parityArray is RAID 4, 5 or 6: each stripe holds Members-parity data chunks, P (XOR) and for RAID 6
// Q (the GF(2^8) syndrome). A missing member's chunks are rebuilt from the rest of their stripe.
type parityArray struct {
	g         Geometry
	members   []layout.Dev
	size      int64
	algorithm int
	parity    int
}

func (p *parityArray) Size() int64 { return p.size }

// place is where a stripe's pieces sit: the member of data chunk k, of P and of Q (-1 without).
type place struct {
	dd, pd, qd int
}

// locate maps array chunk c to its member, P and Q members and its stripe number, as md computes them.
func (p *parityArray) locate(c int64) (place, int64) {
	n := int64(p.g.Members)
	data := n - int64(p.parity)
	stripe, k := c/data, c%data
	dd := k
	pd, qd := int64(-1), int64(-1)
	switch p.parity {
	case 1:
		switch p.algorithm {
		case leftAsymmetric:
			pd = data - stripe%n
			if dd >= pd {
				dd++
			}
		case rightAsymmetric:
			pd = stripe % n
			if dd >= pd {
				dd++
			}
		case leftSymmetric:
			pd = data - stripe%n
			dd = (pd + 1 + dd) % n
		case rightSymmetric:
			pd = stripe % n
			dd = (pd + 1 + dd) % n
		case parity0:
			pd = 0
			dd++
		case parityN:
			pd = data
		}
	case 2:
		switch p.algorithm {
		case leftAsymmetric, rightAsymmetric:
			if p.algorithm == leftAsymmetric {
				pd = n - 1 - stripe%n
			} else {
				pd = stripe % n
			}
			qd = pd + 1
			if pd == n-1 {
				dd++
				qd = 0
			} else if dd >= pd {
				dd += 2
			}
		case leftSymmetric:
			pd = n - 1 - stripe%n
			qd = (pd + 1) % n
			dd = (pd + 2 + dd) % n
		case rightSymmetric:
			pd = stripe % n
			qd = (pd + 1) % n
			dd = (pd + 2 + dd) % n
		case parity0:
			pd, qd = 0, 1
			dd += 2
		case parityN:
			pd, qd = data, data+1
		}
	}
	return place{int(dd), int(pd), int(qd)}, stripe
}

// slot is the position of member d among the data members of a stripe in the Q syndrome: md counts
// from the member after Q (from member 0 when Q is last), skipping P and Q.
func (p *parityArray) slot(pl place, d int) int {
	n := p.g.Members
	d0 := 0
	if pl.qd != n-1 {
		d0 = pl.qd + 1
	}
	s := 0
	for i := d0; ; i = (i + 1) % n {
		if i == d {
			return s
		}
		if i != pl.pd && i != pl.qd {
			s++
		}
	}
}

func (p *parityArray) ReadAt(b []byte, off int64) (int, error) {
	q, short, err := layout.Clip(b, off, p.size)
	if err != nil {
		return 0, err
	}
	n, err := pieces(q, off, p.g.Chunk, func(buf []byte, c, in int64) error {
		pl, stripe := p.locate(c)
		at := stripe*p.g.Chunk + in
		if m := p.members[pl.dd]; m != nil {
			if err := layout.ReadFull(m, buf, at); err != nil {
				return fmt.Errorf("raid%d member %d: %w", p.g.Level, pl.dd, err)
			}
			return nil
		}
		return p.rebuild(buf, pl, at)
	})
	if err != nil {
		return n, err
	}
	return layout.Finish(n, short, nil)
}

// rebuild computes the missing data chunk piece of pl.dd at member offset at from the rest of its stripe.
func (p *parityArray) rebuild(buf []byte, pl place, at int64) error {
	n := p.g.Members
	lost := []int{p.slot(pl, pl.dd)} // Q slots of the stripe's missing data members, the wanted one first
	for i := 0; i < n; i++ {
		if i != pl.dd && i != pl.pd && i != pl.qd && p.members[i] == nil {
			lost = append(lost, p.slot(pl, i))
		}
	}
	useP, useQ, ok := parity.Plan(len(lost), p.members[pl.pd] != nil, pl.qd >= 0 && p.members[pl.qd] != nil)
	if !ok {
		return fmt.Errorf("raid%d: stripe at %d lost %d data members and its parity: %w", p.g.Level, at, len(lost), layout.ErrMissing)
	}
	// pSum = P ^ every present data chunk; qSum = Q ^ Σ g^slot·D over present data chunks.
	var pSum, qSum []byte
	if useP {
		pSum = make([]byte, len(buf))
		if err := layout.ReadFull(p.members[pl.pd], pSum, at); err != nil {
			return fmt.Errorf("raid%d parity member %d: %w", p.g.Level, pl.pd, err)
		}
	}
	if useQ {
		qSum = make([]byte, len(buf))
		if err := layout.ReadFull(p.members[pl.qd], qSum, at); err != nil {
			return fmt.Errorf("raid6 Q member %d: %w", pl.qd, err)
		}
	}
	tmp := make([]byte, len(buf))
	for i := 0; i < n; i++ {
		if i == pl.pd || i == pl.qd || p.members[i] == nil {
			continue
		}
		if err := layout.ReadFull(p.members[i], tmp, at); err != nil {
			return fmt.Errorf("raid%d member %d: %w", p.g.Level, i, err)
		}
		parity.Add(pSum, qSum, tmp, p.slot(pl, i))
	}
	if err := parity.Solve(buf, lost, pSum, qSum); err != nil {
		return fmt.Errorf("raid%d: stripe at %d: %w", p.g.Level, at, err)
	}
	return nil
}
