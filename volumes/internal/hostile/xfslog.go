package hostile

import (
	"errors"
	"fmt"
	"hash/crc32"
)

const xlogMagic = 0xfeedbabe

// xlogPlan is the internal log of an xfs-dirty image: where it lies and its record headers in order.
type xlogPlan struct {
	off, bbs int64   // byte offset of BB 0, number of BBs
	recs     []int64 // BB numbers of the record headers from BB 0 to the head
}

func (l *xlogPlan) at(bb int64) int64 { return l.off + bb*512 }

func findXlog(base *Image) (*xlogPlan, error) {
	if string(base.Bytes(0, 4)) != "XFSB" || base.B32(88) != 1 {
		return nil, errors.New("not a one-AG XFS image")
	}
	bs := int64(base.B32(4))
	l := &xlogPlan{off: int64(base.B64(48)) * bs, bbs: int64(base.B32(96)) * bs / 512}
	if l.off <= 0 || l.off+l.bbs*512 > base.Size() {
		return nil, fmt.Errorf("log at %d of %d BBs outside the image", l.off, l.bbs)
	}
	// Records of the first one's cycle, up to the head: past it lie mkfs's records of the cycle before.
	cycle := base.B32(l.at(0) + 4)
	for bb := int64(0); bb < l.bbs && base.B32(l.at(bb)) == xlogMagic && base.B32(l.at(bb)+4) == cycle; {
		l.recs = append(l.recs, bb)
		if size := base.B32(l.at(bb) + 320); size > 32<<10 {
			return nil, fmt.Errorf("record at BB %d: a %d-byte log buffer needs extended headers the plan does not fix", bb, size)
		}
		bb += 1 + (int64(base.B32(l.at(bb)+12))+511)/512
	}
	if len(l.recs) < 3 {
		return nil, fmt.Errorf("%d log records: the fixture was not snapshotted live", len(l.recs))
	}
	return l, nil
}

// fixRecord recomputes the CRC of the record at BB bb as xlog_cksum does: the 328-byte header with
// its CRC field zeroed, then the data as written (a one-BB header: 32 KiB log buffers).
func (l *xlogPlan) fixRecord(im *Image, bb int64) {
	h := l.at(bb)
	n := int64(im.B32(h + 12))
	if n <= 0 || n > 256<<10 || bb+1+(n+511)/512 > l.bbs {
		return // a length the reader refuses before any checksum
	}
	im.PutLE(h+32, 4, 0)
	c := crc32.Update(0, castagnoli, im.Bytes(h, 328))
	c = crc32.Update(c, castagnoli, im.Bytes(l.at(bb+1), int(n)))
	im.PutLE(h+32, 4, uint64(c))
}

// setCycle sets the cycle number of BB bb: in a record header it follows the magic.
func (l *xlogPlan) setCycle(im *Image, bb int64, c uint32) {
	if im.B32(l.at(bb)) == xlogMagic {
		im.PutBE(l.at(bb)+4, 4, uint64(c))
	} else {
		im.PutBE(l.at(bb), 4, uint64(c))
	}
}

func xfsLogCases(base *Image) ([]Case, error) {
	l, err := findXlog(base)
	if err != nil {
		return nil, err
	}
	var cases []Case
	add := func(name string, im *Image) { cases = append(cases, one(name, im)) }
	last := l.recs[len(l.recs)-1]
	// Logs whose head cannot be found: cycles at the start and end that are not one apart, every
	// header gone, every BB of one cycle, and cycle numbers at their largest.
	im := base.Clone()
	l.setCycle(im, l.bbs-1, 5)
	add("no-head/start-1-end-5", im)
	im = base.Clone()
	l.setCycle(im, 0, 0xffffffff)
	l.setCycle(im, l.bbs-1, 0xfffffffd)
	add("no-head/start-2^32-1-end-2^32-3", im)
	// Every header's magic zeroed: BB 0 then reads as cycle 0, which the kernel takes for a totally
	// zeroed log and mounts clean without recovery (xfs_logprint -t and a mount say so); so must we.
	im = base.Clone()
	for _, r := range l.recs {
		im.PutBE(l.at(r), 4, 0)
	}
	add("headers-gone", im)
	cases[len(cases)-1].States = []string{"clean"}
	im = base.Clone()
	for bb := int64(0); bb < l.bbs; bb++ {
		l.setCycle(im, bb, 1) // every BB of cycle 1: the head is at the end, the newest record unknown
	}
	add("no-head/all-cycle-1", im)
	im = base.Clone()
	for _, r := range l.recs {
		im.PutBE(l.at(r)+4, 4, 0xffffffff)
	}
	add("cycles-2^32-1", im)
	// Bad checksums: each record's data, each header's CRC.
	for i, r := range l.recs {
		im := base.Clone()
		im.Put(l.at(r)+32, []byte{^base.Bytes(l.at(r)+32, 1)[0]})
		add(fmt.Sprintf("bad-record-crc#%d", i), im)
		im = base.Clone()
		im.Put(l.at(r+1)+100, []byte{^base.Bytes(l.at(r+1)+100, 1)[0]})
		add(fmt.Sprintf("bad-record-data#%d", i), im)
	}
	// A transaction claiming 2^32 operations, and the newest record's length, tail, LSN and size
	// fields at extremes, with its CRC made right again.
	for _, r := range []int64{l.recs[1], last} {
		for off := int64(4); off < 48; off += 4 {
			for _, v := range extremes(base.Bytes(l.at(r)+off, 4)) {
				im := base.Clone()
				im.Put(l.at(r)+off, v)
				l.fixRecord(im, r)
				add(fmt.Sprintf("record@%d+%d=%x", r, off, v), im)
				if off == 4 && r == l.recs[1] && string(v) == "\x00\x00\x00\x00" {
					// The first record after mkfs's unmount record of cycle 0: the log ends before it
					// and, as for the kernel (xfs_logprint -t, a mount), is clean.
					cases[len(cases)-1].States = []string{"clean"}
				}
			}
		}
		for _, v := range extremes(base.Bytes(l.at(r)+320, 4)) {
			im := base.Clone()
			im.Put(l.at(r)+320, v)
			l.fixRecord(im, r)
			add(fmt.Sprintf("record@%d+320=%x", r, v), im)
		}
	}
	// Operation headers of the newest record at extremes: transaction id, length, client, flags.
	for off := int64(0); off < 12; off += 4 {
		at := l.at(last+1) + off
		for _, v := range extremes(base.Bytes(at, 4)) {
			im := base.Clone()
			im.Put(at, v)
			l.fixRecord(im, last)
			add(fmt.Sprintf("op@%d+%d=%x", last, off, v), im)
		}
	}
	// Cuts inside the log.
	for _, c := range []int64{l.at(0) + 256, l.at(l.recs[1]), l.at(last) + 700, l.at(l.bbs) - 1} {
		add(fmt.Sprintf("truncate@%d", c), base.Truncated(c))
	}
	return cases, nil
}
