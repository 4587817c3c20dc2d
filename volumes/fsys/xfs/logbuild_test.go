package xfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// recordHeader is what a new log record copies from the newest one of a log: its cycle, version,
// format, filesystem UUID and log buffer size (h_size, which sets the number of header blocks).
type recordHeader struct {
	cycle, version, format, size uint32
	uuid                         [16]byte
}

// transactionRecord builds a log record at BB blk (the previous record at prev) holding one committed
// transaction of the given items, each a list of regions, laid out as the kernel writes a checkpoint:
// a start operation, the transaction header, one operation per region, the commit operation. The
// record names itself as the log's tail, so recovery replays it alone; its data blocks carry the
// cycle number with their first words saved in the header, and its CRC is good.
func transactionRecord(h recordHeader, blk, prev int64, items [][][]byte) []byte {
	const tid = 0x1eaf
	var data []byte
	ops := uint32(0)
	op := func(flags byte, b []byte) {
		var oh [12]byte
		be.PutUint32(oh[:], tid)
		be.PutUint32(oh[4:], uint32(len(b)))
		oh[8], oh[9] = clientTrans, flags
		data = append(append(data, oh[:]...), b...)
		ops++
	}
	op(opStart, nil)
	th := make([]byte, 16)
	binary.LittleEndian.PutUint32(th, transHeaderMagic)
	binary.LittleEndian.PutUint32(th[4:], 40) // XFS_TRANS_CHECKPOINT
	binary.LittleEndian.PutUint32(th[8:], tid)
	binary.LittleEndian.PutUint32(th[12:], uint32(len(items)))
	op(0, th)
	for _, it := range items {
		for _, r := range it {
			op(0, r)
		}
	}
	op(opCommit, nil)
	dataBBs := (int64(len(data)) + bbSize - 1) / bbSize
	data = append(data, make([]byte, dataBBs*bbSize-int64(len(data)))...)
	hdr := make([]byte, bbSize)
	hblks := int64(1)
	if h.version&logVersion2 != 0 && h.size > logHeaderCycle {
		hblks = (int64(h.size) + logHeaderCycle - 1) / logHeaderCycle
	}
	ext := make([]byte, (hblks-1)*bbSize)
	for i := int64(0); i < dataBBs; i++ {
		if i < 64 {
			copy(hdr[44+4*i:], data[i*bbSize:i*bbSize+4])
		} else {
			copy(ext[(i/64-1)*bbSize+4+4*(i%64):], data[i*bbSize:i*bbSize+4])
		}
		be.PutUint32(data[i*bbSize:], h.cycle)
	}
	for j := int64(0); j < hblks-1; j++ {
		be.PutUint32(ext[j*bbSize:], h.cycle)
	}
	be.PutUint32(hdr, logMagic)
	be.PutUint32(hdr[4:], h.cycle)
	be.PutUint32(hdr[8:], h.version)
	be.PutUint32(hdr[12:], uint32(len(data)))
	be.PutUint64(hdr[16:], uint64(h.cycle)<<32|uint64(blk))
	be.PutUint64(hdr[24:], uint64(h.cycle)<<32|uint64(blk))
	be.PutUint32(hdr[36:], uint32(prev))
	be.PutUint32(hdr[40:], ops)
	be.PutUint32(hdr[300:], h.format)
	copy(hdr[304:320], h.uuid[:])
	be.PutUint32(hdr[320:], h.size)
	binary.LittleEndian.PutUint32(hdr[32:], recordCRC(hdr, ext, data, hblks, 328))
	return append(append(hdr, ext...), data...)
}

// appendTransaction writes a record holding one committed transaction of items at the head of the
// clean log of the XFS image img (size bytes, changed in place), as if the kernel had committed it and
// then crashed.
func appendTransaction(t testing.TB, img interface {
	io.ReaderAt
	io.WriterAt
}, size int64, items [][][]byte) {
	t.Helper()
	f, err := open(img, size)
	if err != nil {
		t.Fatal(err)
	}
	off, err := f.sb.fsbToByte(f.sb.logStart)
	if err != nil {
		t.Fatal(err)
	}
	l := &xlog{r: img, off: off, bbs: int64(f.sb.logBlocks) << f.sb.blockLog / bbSize}
	// A zeroed log (as mkfs or xfs_repair -L leave it) gets the record at BB 0 in cycle 1.
	h := recordHeader{cycle: 1, version: logVersion2, format: 1, size: logHeaderCycle, uuid: f.sb.uuid}
	var head, last int64
	switch head, err = l.findHead(); {
	case errors.Is(err, errZeroedLog):
		head = 0
	case err != nil:
		t.Fatal(err)
	default:
		if clean, err := l.clean(head); !clean || err != nil {
			t.Fatalf("the image's log is not clean (%v)", err)
		}
		if last, err = l.lastRecord(head); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, bbSize)
		if err := l.readBB(hdr, last); err != nil {
			t.Fatal(err)
		}
		h = recordHeader{cycle: be.Uint32(hdr[4:]), version: be.Uint32(hdr[8:]), format: be.Uint32(hdr[300:]), size: be.Uint32(hdr[320:])}
		copy(h.uuid[:], hdr[304:320])
	}
	rec := transactionRecord(h, head, last, items)
	if head+int64(len(rec))/bbSize >= l.bbs {
		t.Fatalf("no room for a %d-byte record at block %d of a %d-block log", len(rec), head, l.bbs)
	}
	if _, err := img.WriteAt(rec, off+head*bbSize); err != nil {
		t.Fatal(err)
	}
}

// memImage is an image in memory that appendTransaction can change.
type memImage []byte

func (m memImage) ReadAt(p []byte, off int64) (int, error) { return bytes.NewReader(m).ReadAt(p, off) }

func (m memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

// compactBUILog is a log of its own (cycle 1, the record at BB 0, then zeroed BBs) holding one
// transaction of the given BUIs, for the fixture whose superblock is sb: a fuzz seed.
func compactBUILog(sb *superblock, buis ...[]byte) []byte {
	var items [][][]byte
	for _, b := range buis {
		items = append(items, [][]byte{b})
	}
	h := recordHeader{cycle: 1, version: logVersion2, format: 1, size: logHeaderCycle, uuid: sb.uuid}
	rec := transactionRecord(h, 0, 0, items)
	return append(rec, make([]byte, 8*bbSize)...)
}
