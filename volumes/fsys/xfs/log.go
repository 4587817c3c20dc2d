package xfs

import (
	"errors"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// The XFS log is a circular run of 512-byte basic blocks (BBs). Every BB starts with the cycle number
// of the pass that wrote it (a record header BB starts with the header magic, its cycle next), so the
// head, where the newest write ended, is where the cycle number drops. A cleanly unmounted log ends
// with a record holding one operation, the unmount record. This file finds the head as the kernel's
// xlog_find_head does and tells whether the log is clean; replaying a dirty one is not done yet.
const (
	logMagic        = 0xFEEDBABE
	bbSize          = 512
	unmountTrans    = 0x20     // op header flag of the unmount record (XLOG_UNMOUNT_TRANS)
	logHeaderCycle  = 32 << 10 // record bytes covered by one header BB's cycle data
	logVersion2     = 0x2
	maxInFlightBBs  = 8 * (256 << 10) / bbSize // the kernel's XLOG_TOTAL_REC_SHIFT: 8 iclogs of at most 256 KiB
	maxRecordHdrBBs = 8                        // 256 KiB records need 8 header BBs
)

// errZeroedLog: a log never written, or zeroed, holds nothing to replay.
var errZeroedLog = errors.New("xfs: the log is zeroed")

// xlog is the internal log's place on the volume.
type xlog struct {
	r   io.ReaderAt
	off int64 // byte offset of BB 0
	bbs int64 // number of BBs
}

// cycle reads the cycle number of BB i.
func (l *xlog) cycle(i int64) (uint32, error) {
	var b [8]byte
	if _, err := l.r.ReadAt(b[:], l.off+i*bbSize); err != nil {
		return 0, fmt.Errorf("xfs: reading log block %d: %w", i, err)
	}
	if be.Uint32(b[:]) == logMagic {
		return be.Uint32(b[4:]), nil
	}
	return be.Uint32(b[:]), nil
}

// firstWith returns the first BB in [lo, hi) whose cycle is c, given that the BBs before it all have
// another cycle (binary search over the boundary); hi when none has.
func (l *xlog) firstWith(lo, hi int64, c uint32) (int64, error) {
	for lo < hi {
		mid := lo + (hi-lo)/2
		mc, err := l.cycle(mid)
		if err != nil {
			return 0, err
		}
		if mc == c {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// findHead returns the BB after the newest write, as xlog_find_head: a zeroed tail of the log ends
// the written part; else the head is where the cycle drops from the first BB's to the last one's.
// Writes in flight may land out of order, so the last stretch before that boundary is searched for
// BBs still of the old cycle, and the head moves back to the first of them.
func (l *xlog) findHead() (int64, error) {
	first, err := l.cycle(0)
	if err != nil {
		return 0, err
	}
	if first == 0 {
		return 0, errZeroedLog
	}
	last, err := l.cycle(l.bbs - 1)
	if err != nil {
		return 0, err
	}
	var head int64
	switch {
	case last == 0:
		if head, err = l.firstWith(0, l.bbs, 0); err != nil {
			return 0, err
		}
	case first == last:
		head = l.bbs // the last pass ended exactly at the end; the head is BB 0 of the next pass
	case first != last+1:
		return 0, corruptf("log cycles %d at its start and %d at its end: no head can be found", first, last)
	default:
		if head, err = l.firstWith(0, l.bbs, last); err != nil {
			return 0, err
		}
	}
	// Out-of-order writes: the oldest hole in the window before the head is the real head.
	old := first - 1
	if last == 0 {
		old = 0
	}
	for i := max(0, head-maxInFlightBBs); i < head; i++ {
		c, err := l.cycle(i)
		if err != nil {
			return 0, err
		}
		if c == old || c == 0 {
			return i, nil
		}
	}
	return head % l.bbs, nil
}

// lastRecord returns the BB of the newest record header before head.
func (l *xlog) lastRecord(head int64) (int64, error) {
	var b [4]byte
	// The newest record header lies at most one record (256 KiB plus headers) before the head.
	for back := int64(1); back <= min(l.bbs, (256<<10)/bbSize+maxRecordHdrBBs+1); back++ {
		i := ((head-back)%l.bbs + l.bbs) % l.bbs
		if _, err := l.r.ReadAt(b[:], l.off+i*bbSize); err != nil {
			return 0, fmt.Errorf("xfs: reading log block %d: %w", i, err)
		}
		if be.Uint32(b[:]) == logMagic {
			return i, nil
		}
	}
	return 0, corruptf("no log record header before the log head at block %d", head)
}

// headerBBs is the number of header BBs of the record whose first one is hdr: a v2 log with buffers
// (h_size) over 32 KiB has extended headers. In 64 bits: h_size of 2^32-1 must not wrap to none.
func headerBBs(hdr []byte) int64 {
	size := int64(be.Uint32(hdr[320:]))
	if be.Uint32(hdr[8:])&logVersion2 != 0 && size > logHeaderCycle {
		return (size + logHeaderCycle - 1) / logHeaderCycle
	}
	return 1
}

// clean reports whether the record ending at head is an unmount record.
func (l *xlog) clean(head int64) (bool, error) {
	i, err := l.lastRecord(head)
	if err != nil {
		return false, err
	}
	hdr := make([]byte, bbSize)
	if err := l.readBB(hdr, i); err != nil {
		return false, err
	}
	numOps := be.Uint32(hdr[40:])
	hblks := headerBBs(hdr)
	recLen := int64(be.Uint32(hdr[12:]))
	if (i+hblks+(recLen+bbSize-1)/bbSize)%l.bbs != head%l.bbs {
		return false, nil // the newest record does not end at the head: a write was torn
	}
	if numOps != 1 || recLen < 12 {
		return false, nil
	}
	op := make([]byte, 12)
	if _, err := l.r.ReadAt(op, l.off+((i+hblks)%l.bbs)*bbSize); err != nil {
		return false, fmt.Errorf("xfs: reading log block %d: %w", i+hblks, err)
	}
	return op[9]&unmountTrans != 0, nil
}

// logState says whether the volume was cleanly unmounted, judging by its log.
func (f *FS) logState() fsys.VolumeState {
	sb := f.sb
	if sb.logStart == 0 {
		return fsys.VolumeState{State: fsys.StateDirty,
			Detail: "the XFS log is on an external device, not part of this disk set: its state is unknown and it is not replayed"}
	}
	off, err := sb.fsbToByte(sb.logStart)
	n := int64(sb.logBlocks) << sb.blockLog
	if err == nil && (n < bbSize || off+n > f.size) {
		err = corruptf("log of %d bytes at %d beyond the volume", n, off)
	}
	var l *xlog
	var head int64
	var ok bool
	if err == nil {
		l = &xlog{r: f.r, off: off, bbs: n / bbSize}
		head, err = l.findHead()
		if errors.Is(err, errZeroedLog) {
			return fsys.VolumeState{State: fsys.StateClean} // as xfs_repair -L leaves it: nothing to replay
		}
	}
	if err == nil {
		ok, err = l.clean(head)
	}
	switch {
	case err != nil:
		return fsys.VolumeState{State: fsys.StateDirty, Detail: "the XFS log cannot be read (" + err.Error() + "); it is not replayed"}
	case !ok:
		f.log, f.head = l, head
		return fsys.VolumeState{State: fsys.StateDirty,
			Detail: fmt.Sprintf("the XFS log needs recovery (head at block %d) and is not replayed: recent changes are missing", head)}
	}
	return fsys.VolumeState{State: fsys.StateClean}
}

// VolumeState reports whether the log was clean.
func (f *FS) VolumeState() fsys.VolumeState { return f.state }
