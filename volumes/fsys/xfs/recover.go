package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Log recovery, after the kernel's fs/xfs/xfs_log_recover.c: read the records from the tail the newest
// record names to the head, put their operations together into transactions, and replay the
// committed ones in log order into an in-memory layer over the volume (the source is never written).
//
// Replayed: buffer items (the dirty 128-byte chunks of their bitmaps; cancelled buffers skipped as the
// kernel's two passes do; a v5 buffer already newer on disk than the transaction is left alone), inode
// items (the core, data and attribute forks, device numbers) and inode-create items. Skipped, because
// they only concern free space, quotas, reverse mappings, reference counts or in-flight unlinked lists,
// none of which the file tree reads: EFI/EFD, RUI/RUD, CUI/CUD, dquot and quotaoff items, iunlink items
// and the di_next_unlinked updates of inode buffers. Unfinished bmap intents are finished after the replay
// (redo.go). Not done yet: unfinished logged-xattr and exchange-range intents, which the kernel
// completes after replay (a replay that leaves one makes the volume's state dirty, naming them:
// intents.go); and bmbt owner changes.
const (
	clientTrans = 0x69
	clientLog   = 0xaa

	opStart    = 0x01
	opCommit   = 0x02
	opContinue = 0x04
	opWasCont  = 0x08
	opEnd      = 0x10
	opUnmount  = 0x20

	transHeaderMagic = 0x5452414e // "TRAN"
	maxItemRegions   = 257        // XLOG_MAX_REGIONS_IN_ITEM: 64 KiB of 128-byte chunks, every other one dirty, plus the format

	liBuf     = 0x123c
	liInode   = 0x123b
	liICreate = 0x123f

	blfInodeBuf = 0x1
	blfCancel   = 0x2
	blfDquot    = 0x4 | 0x8 | 0x10
	blfChunk    = 128

	ilogDDATA  = 0x002
	ilogDEXT   = 0x004
	ilogDBROOT = 0x008
	ilogDEV    = 0x010
	ilogADATA  = 0x040
	ilogAEXT   = 0x080
	ilogABROOT = 0x100
	ilogDFORK  = ilogDDATA | ilogDEXT | ilogDBROOT
	ilogAFORK  = ilogADATA | ilogAEXT | ilogABROOT

	dinodeMagic = 0x494e
)

// logRecord is one record's header fields and unpacked data.
type logRecord struct {
	blk  int64
	lsn  uint64
	ops  uint32 // operations in data; padding may follow them
	data []byte
}

// record reads the record whose header is at BB blk: its header BBs, its data with the first word of
// every BB restored from the cycle data, checked against its CRC when it has one. next is the BB
// after it.
func (l *xlog) record(blk int64, crc bool) (rec logRecord, next int64, err error) {
	hdr := make([]byte, bbSize)
	if err := l.readBB(hdr, blk); err != nil {
		return rec, 0, err
	}
	if be.Uint32(hdr) != logMagic {
		return rec, 0, corruptf("no log record header at block %d", blk)
	}
	recLen := int64(be.Uint32(hdr[12:]))
	hblks := headerBBs(hdr)
	if recLen <= 0 || recLen > 256<<10 || hblks > maxRecordHdrBBs || hblks*logHeaderCycle < recLen && hblks > 1 {
		return rec, 0, corruptf("log record at block %d: %d bytes with %d header blocks", blk, recLen, hblks)
	}
	dataBBs := (recLen + bbSize - 1) / bbSize
	if hblks+dataBBs > l.bbs {
		return rec, 0, corruptf("log record at block %d is larger than the log", blk)
	}
	ext := make([]byte, (hblks-1)*bbSize)
	if err := l.readRange(ext, (blk+1)%l.bbs); err != nil {
		return rec, 0, err
	}
	data := make([]byte, dataBBs*bbSize)
	if err := l.readRange(data, (blk+hblks)%l.bbs); err != nil {
		return rec, 0, err
	}
	// The header's checksummed size is sizeof(struct xlog_rec_header): 328 bytes where 64-bit fields
	// align to 8, 324 where they do not (i386).
	if want := binary.LittleEndian.Uint32(hdr[32:]); crc && recordCRC(hdr, ext, data[:recLen], hblks, 328) != want &&
		recordCRC(hdr, ext, data[:recLen], hblks, 324) != want {
		return rec, 0, corruptf("log record at block %d: bad checksum", blk)
	}
	for i := int64(0); i < dataBBs; i++ {
		var saved []byte
		if i < 64 {
			saved = hdr[44+4*i:]
		} else {
			j := i/64 - 1
			if j >= hblks-1 {
				return rec, 0, corruptf("log record at block %d: no cycle data for block %d", blk, i)
			}
			saved = ext[j*bbSize+4+4*(i%64):]
		}
		copy(data[i*bbSize:i*bbSize+4], saved[:4])
	}
	return logRecord{blk: blk, lsn: be.Uint64(hdr[16:]), ops: be.Uint32(hdr[40:]), data: data[:recLen]}, (blk + hblks + dataBBs) % l.bbs, nil
}

// recordCRC is xlog_cksum: the header (its CRC field as zero), the extended headers, the data.
func recordCRC(hdr, ext, data []byte, hblks int64, hdrSize int) uint32 {
	c := crc32.Update(0, castagnoli, hdr[:32])
	c = crc32.Update(c, castagnoli, zeroCRC[:])
	c = crc32.Update(c, castagnoli, hdr[36:hdrSize])
	for i := int64(1); i < (int64(len(data))+logHeaderCycle-1)/logHeaderCycle && i < hblks; i++ {
		c = crc32.Update(c, castagnoli, ext[(i-1)*bbSize:(i-1)*bbSize+260])
	}
	return crc32.Update(c, castagnoli, data)
}

// readRange reads len(b)/512 BBs from BB i on, wrapping at the log's end.
func (l *xlog) readRange(b []byte, i int64) error {
	for len(b) > 0 {
		n := min(int64(len(b)), (l.bbs-i)*bbSize)
		if err := l.readBB(b[:n], i); err != nil {
			return err
		}
		b, i = b[n:], 0
	}
	return nil
}

func (l *xlog) readBB(b []byte, i int64) error {
	if _, err := l.r.ReadAt(b, l.off+i*bbSize); err != nil {
		return fmt.Errorf("xfs: reading log block %d: %w", i, err)
	}
	return nil
}

// item is one logged object of a transaction: its regions, the first being its format structure.
type item struct {
	total   int
	regions [][]byte
}

type transaction struct {
	lsn    uint64
	header []byte
	items  []*item
}

// addOp adds one operation's bytes to a transaction, as xlog_recover_add_to_trans (cont false) and
// xlog_recover_add_to_cont_trans (cont true, the rest of a region split across operations) do.
func (t *transaction) addOp(b []byte, cont bool) error {
	if len(b) == 0 {
		return nil
	}
	if t.header == nil {
		if cont || len(b) < 4 || len(b) > 16 || binary.LittleEndian.Uint32(b) != transHeaderMagic {
			return corruptf("log transaction without a header")
		}
		t.header = append([]byte(nil), b...)
		return nil
	}
	var it *item
	if len(t.items) > 0 {
		it = t.items[len(t.items)-1]
	}
	if cont {
		if it == nil || len(it.regions) == 0 {
			return corruptf("log operation continues a region that does not exist")
		}
		it.regions[len(it.regions)-1] = append(it.regions[len(it.regions)-1], b...)
		return nil
	}
	if it == nil || it.total == len(it.regions) {
		it = &item{}
		t.items = append(t.items, it)
	}
	if it.total == 0 {
		if len(b) < 4 {
			return corruptf("log item format of %d bytes", len(b))
		}
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if n == 0 || n > maxItemRegions {
			return corruptf("log item with %d regions", n)
		}
		it.total = n
	}
	it.regions = append(it.regions, append([]byte(nil), b...))
	return nil
}

// recovery is the replay state: the buffers replay touched, kept whole like the kernel's buffer cache,
// and which buffer holds the newest copy of each 512-byte block (buffers of different lengths may
// overlap).
type recovery struct {
	f       *FS
	bufs    map[[2]int64]*rbuf
	owner   map[int64]*rbuf
	cancels map[[2]int64]int
	dirty   map[[2]int64]uint64 // replayed buffers and the LSN of the last transaction that touched them
	limit   int64               // bytes the buffers may hold
	held    int64
}

type rbuf struct {
	daddr int64
	b     []byte
}

// readBuf returns the buffer of n BBs at daddr, as replay has left it so far. Callers change it in
// place and then call writeBuf.
func (rc *recovery) readBuf(daddr, n int64) ([]byte, error) { return rc.buf(daddr, n, true) }

// buf is readBuf; read false skips reading a buffer not cached yet from the disk, for one about to be
// overwritten whole.
func (rc *recovery) buf(daddr, n int64, read bool) ([]byte, error) {
	if daddr < 0 || n <= 0 || n > 1<<12 || (daddr+n)*bbSize > rc.f.size {
		return nil, corruptf("log names %d blocks at disk address %d, beyond the volume", n, daddr)
	}
	key := [2]int64{daddr, n}
	rb := rc.bufs[key]
	if rb == nil {
		if rc.held += n * bbSize; rc.held > rc.limit {
			return nil, fmt.Errorf("xfs: log replay needs more than %d bytes of memory", rc.limit)
		}
		rb = &rbuf{daddr: daddr, b: make([]byte, n*bbSize)}
		if !read {
			rc.bufs[key] = rb
			return rb.b, nil
		}
		if err := rc.f.readAt(rb.b, daddr*bbSize); err != nil {
			return nil, err
		}
		rc.bufs[key] = rb
	}
	for i := int64(0); i < n; i++ {
		if o := rc.owner[daddr+i]; o != nil && o != rb {
			at := (daddr + i - o.daddr) * bbSize
			copy(rb.b[i*bbSize:(i+1)*bbSize], o.b[at:at+bbSize])
		}
	}
	return rb.b, nil
}

// writeBuf records that the buffer at daddr (as readBuf returned it) now holds the newest copy of its
// blocks.
func (rc *recovery) writeBuf(daddr int64, b []byte) error {
	rb := rc.bufs[[2]int64{daddr, int64(len(b)) / bbSize}]
	if rb == nil || &rb.b[0] != &b[0] {
		return fmt.Errorf("xfs: log replay wrote a buffer it did not read")
	}
	for i := int64(0); i < int64(len(b))/bbSize; i++ {
		rc.owner[daddr+i] = rb
	}
	return nil
}

// bufFormat is the part of xfs_buf_log_format replay needs (host-endian: little-endian here).
func bufFormat(b []byte) (flags uint16, nbb int64, daddr int64, mapWords []byte, err error) {
	if len(b) < 20 {
		return 0, 0, 0, nil, corruptf("buffer log item of %d bytes", len(b))
	}
	le := binary.LittleEndian
	flags, nbb, daddr = le.Uint16(b[4:]), int64(le.Uint16(b[6:])), int64(le.Uint64(b[8:]))
	words := int(le.Uint32(b[16:]))
	if words > (len(b)-20)/4 {
		return 0, 0, 0, nil, corruptf("buffer log item bitmap of %d words in %d bytes", words, len(b))
	}
	return flags, nbb, daddr, b[20 : 20+4*words], nil
}

// replay runs both passes over the committed transactions.
func (rc *recovery) replay(trans []*transaction) error {
	for _, t := range trans {
		for _, it := range t.items {
			if len(it.regions) > 0 && len(it.regions[0]) >= 2 && binary.LittleEndian.Uint16(it.regions[0]) == liBuf {
				if flags, n, daddr, _, err := bufFormat(it.regions[0]); err == nil && flags&blfCancel != 0 {
					rc.cancels[[2]int64{daddr, n}]++
				}
			}
		}
	}
	for _, t := range trans {
		// Buffers and inode creations first, then inodes, as xlog_recover_reorder_trans orders them.
		var first, later []*item
		for _, it := range t.items {
			if len(it.regions) == 0 || len(it.regions[0]) < 4 {
				continue
			}
			switch binary.LittleEndian.Uint16(it.regions[0]) {
			case liBuf, liICreate:
				first = append(first, it)
			case liInode:
				later = append(later, it)
			}
		}
		for _, it := range append(first, later...) {
			var err error
			switch binary.LittleEndian.Uint16(it.regions[0]) {
			case liBuf:
				err = rc.buffer(it, t.lsn)
			case liICreate:
				err = rc.icreate(it)
			case liInode:
				err = rc.inode(it, t.lsn)
			}
			if err != nil {
				return err
			}
		}
	}
	return rc.finishBuffers()
}

func (rc *recovery) cancelled(daddr, n int64) bool { return rc.cancels[[2]int64{daddr, n}] > 0 }

// buffer replays a buffer item's dirty chunks.
func (rc *recovery) buffer(it *item, lsn uint64) error {
	flags, n, daddr, bitmap, err := bufFormat(it.regions[0])
	if err != nil {
		return err
	}
	key := [2]int64{daddr, n}
	if flags&blfCancel != 0 {
		if rc.cancels[key]--; rc.cancels[key] <= 0 {
			delete(rc.cancels, key)
		}
		return nil
	}
	if rc.cancelled(daddr, n) || flags&(blfInodeBuf|blfDquot) != 0 {
		return nil
	}
	b, err := rc.readBuf(daddr, n)
	if err != nil {
		return err
	}
	if rc.f.sb.crc {
		if on := bufLSN(b); on != 0 && on != ^uint64(0) && on >= lsn {
			return nil // the block on disk is already newer than this transaction
		}
	}
	region := 1
	bits := len(bitmap) * 8
	bit := func(i int) bool { return bitmap[i/32*4+(i%32)/8]&(1<<(i%8)) != 0 }
	for i := 0; i < bits; {
		if !bit(i) {
			i++
			continue
		}
		j := i
		for j < bits && bit(j) {
			j++
		}
		if region >= len(it.regions) {
			return corruptf("buffer log item at %d: %d regions for its bitmap", daddr, len(it.regions))
		}
		off, length := i*blfChunk, min((j-i)*blfChunk, len(it.regions[region]))
		if off+length > len(b) {
			return corruptf("buffer log item at %d: dirty range past its %d bytes", daddr, len(b))
		}
		copy(b[off:off+length], it.regions[region])
		region++
		i = j
	}
	rc.dirty[key] = lsn
	return rc.writeBuf(daddr, b)
}

// metaFields gives where a v5 metadata block keeps its LSN and CRC, by its magic; ok false for blocks
// without either.
func metaFields(b []byte) (lsnOff, crcOff int, ok bool) {
	if len(b) < 64 {
		return 0, 0, false
	}
	switch string(b[:4]) {
	case "XDB3", "XDD3", "XDF3":
		return 16, 4, true
	case "AB3B", "AB3C", "IAB3", "FIB3", "RMB3", "R3FC":
		return 24, 52, true
	case "BMA3":
		return 32, 64, true
	case "XAGF":
		return 208, 216, len(b) >= 224
	case "XAGI":
		return 320, 312, len(b) >= 328
	case "XAFL":
		return 24, 32, true
	case "XFSB":
		return 240, 224, len(b) >= 248
	}
	switch be.Uint16(b[8:]) {
	case daNodeMagicV5, dirLeaf1MagicV5, dirLeafNMagicV5, attrLeafMagicV5:
		return 24, 12, true
	}
	return 0, 0, false
}

// bufLSN is the LSN a v5 metadata block carries, 0 when it has none we know of.
func bufLSN(b []byte) uint64 {
	if lsnOff, _, ok := metaFields(b); ok {
		return be.Uint64(b[lsnOff:])
	}
	if len(b) >= 56 && (string(b[:4]) == "XSLM" || string(b[:4]) == "XARM") {
		return be.Uint64(b[48:])
	}
	return 0
}

// finishBuffers stamps every replayed v5 buffer with its transaction's LSN and a fresh CRC, as the
// kernel's write verifiers do when recovery writes them back.
func (rc *recovery) finishBuffers() error {
	if !rc.f.sb.crc {
		return nil
	}
	for key, lsn := range rc.dirty {
		b, err := rc.readBuf(key[0], key[1])
		if err != nil {
			return err
		}
		if lsnOff, crcOff, ok := metaFields(b); ok {
			be.PutUint64(b[lsnOff:], lsn)
			setCRC(b, crcOff)
		} else if string(b[:4]) == "XSLM" || string(b[:4]) == "XARM" {
			// Remote symlink and attribute blocks: one header and CRC per filesystem block.
			bs := int(rc.f.sb.blockSize)
			for o := 0; o+bs <= len(b); o += bs {
				if m := string(b[o : o+4]); m == "XSLM" || m == "XARM" {
					be.PutUint64(b[o+48:], lsn)
					setCRC(b[o:o+bs], 12)
				}
			}
		}
		if err := rc.writeBuf(key[0], b); err != nil {
			return err
		}
	}
	return nil
}

// icreate initialises a new inode chunk as xfs_ialloc_inode_init does.
func (rc *recovery) icreate(it *item) error {
	b := it.regions[0]
	if len(b) < 28 {
		return corruptf("inode-create log item of %d bytes", len(b))
	}
	sb := rc.f.sb
	ag, agbno, count, isize, length, gen := be.Uint32(b[4:]), be.Uint32(b[8:]), be.Uint32(b[12:]), be.Uint32(b[16:]), be.Uint32(b[20:]), be.Uint32(b[24:])
	if ag >= sb.agCount || isize != sb.inodeSize || count == 0 || uint64(agbno)+uint64(length) > uint64(sb.agBlocks) ||
		uint64(count)*uint64(isize) != uint64(length)<<sb.blockLog {
		return corruptf("inode-create log item: %d inodes of %d bytes in %d blocks at %d/%d", count, isize, length, ag, agbno)
	}
	start, err := sb.fsbToByte(uint64(ag)<<sb.agBlkLog | uint64(agbno))
	if err != nil {
		return err
	}
	daddr, n := start/bbSize, int64(length)<<sb.blockLog/bbSize
	for key := range rc.cancels {
		if key[0] < daddr+n && key[0]+key[1] > daddr {
			return nil // the chunk's buffers were cancelled: it was freed again later
		}
	}
	buf, err := rc.buf(daddr, n, false)
	if err != nil {
		return err
	}
	clear(buf)
	first := uint64(ag)<<(sb.agBlkLog+sb.inopbLog) | uint64(agbno)<<sb.inopbLog
	for i := uint32(0); i < count; i++ {
		d := buf[i*isize : (i+1)*isize]
		be.PutUint16(d, dinodeMagic)
		be.PutUint32(d[92:], gen)
		be.PutUint32(d[96:], 0xFFFFFFFF)
		d[4] = 2
		if sb.crc {
			d[4] = 3
			be.PutUint64(d[152:], first+uint64(i))
			copy(d[160:176], sb.metaUUID[:])
			setCRC(d, inodeCRCOff)
		}
	}
	return rc.writeBuf(daddr, buf)
}

// inode replays an inode item: its core (converted from the log's host-endian layout), forks and
// device number, then a fresh CRC.
func (rc *recovery) inode(it *item, lsn uint64) error {
	f := it.regions[0]
	le := binary.LittleEndian
	var fields uint32
	var blkno, boff int64
	var nbb int64
	var rdev uint32
	switch len(f) {
	case 56:
		fields, blkno, nbb, boff, rdev = le.Uint32(f[4:]), int64(le.Uint64(f[40:])), int64(int32(le.Uint32(f[48:]))), int64(int32(le.Uint32(f[52:]))), le.Uint32(f[24:])
	case 52: // the 32-bit layout, without the padding
		fields, blkno, nbb, boff, rdev = le.Uint32(f[4:]), int64(le.Uint64(f[36:])), int64(int32(le.Uint32(f[44:]))), int64(int32(le.Uint32(f[48:]))), le.Uint32(f[20:])
	default:
		return corruptf("inode log item format of %d bytes", len(f))
	}
	if rc.cancelled(blkno, nbb) {
		return nil
	}
	if len(it.regions) < 2 {
		return corruptf("inode log item without its core")
	}
	sb := rc.f.sb
	b, err := rc.readBuf(blkno, nbb)
	if err != nil {
		return err
	}
	isz := int64(sb.inodeSize)
	if boff < 0 || boff+isz > int64(len(b)) {
		return corruptf("inode log item: inode at %d of a %d-byte buffer", boff, len(b))
	}
	dip := b[boff : boff+isz]
	ld := it.regions[1]
	if be.Uint16(dip) != dinodeMagic || len(ld) < 96 || le.Uint16(ld) != dinodeMagic {
		return corruptf("inode log item at disk address %d: bad inode magic", blkno)
	}
	if dip[4] >= 3 {
		if on := be.Uint64(dip[112:]); on != 0 && on != ^uint64(0) && on > lsn {
			return nil
		}
	} else if old, cur := le.Uint16(ld[30:]), be.Uint16(dip[30:]); old < cur && !(cur == 0xFFFF && old < 0x7FFF) {
		return nil
	}
	if err := logDinodeToDisk(ld, dip, lsn); err != nil {
		return err
	}
	lit := int64(100)
	if dip[4] >= 3 {
		lit = 176
	}
	forkoff := int64(dip[82]) * 8
	dsize, asize := isz-lit, int64(0)
	if forkoff != 0 {
		if lit+forkoff > isz {
			return corruptf("inode log item: fork offset %d", forkoff)
		}
		dsize, asize = forkoff, isz-lit-forkoff
	}
	if fields&ilogDEV != 0 {
		be.PutUint32(dip[lit:], rdev)
	}
	next := 2
	if fields&ilogDFORK != 0 && len(it.regions) > 2 {
		if err := putFork(dip[lit:lit+dsize], it.regions[2], fields&ilogDBROOT != 0, sb.crc); err != nil {
			return err
		}
		next = 3
	}
	if fields&ilogAFORK != 0 && len(it.regions) > next {
		if asize == 0 {
			return corruptf("inode log item: attribute fork logged without a fork offset")
		}
		if err := putFork(dip[lit+forkoff:], it.regions[next], fields&ilogABROOT != 0, sb.crc); err != nil {
			return err
		}
	}
	if dip[4] >= 3 {
		setCRC(dip, inodeCRCOff)
	}
	return rc.writeBuf(blkno, b)
}

// putFork copies a logged fork into the inode's fork area: bytes as they are, or a btree root
// converted from the in-memory block format to the on-disk root (xfs_bmbt_to_bmdr).
func putFork(dst, src []byte, broot, crc bool) error {
	if !broot {
		if len(src) > len(dst) {
			return corruptf("inode log item: %d-byte fork for a %d-byte area", len(src), len(dst))
		}
		copy(dst, src)
		return nil
	}
	hdr := 24
	if crc {
		hdr = 72
	}
	if len(src) < hdr || len(dst) < 4 {
		return corruptf("inode log item: btree root of %d bytes", len(src))
	}
	level, n := be.Uint16(src[4:]), int(be.Uint16(src[6:]))
	smax, dmax := (len(src)-hdr)/16, (len(dst)-4)/16
	if n > smax || n > dmax {
		return corruptf("inode log item: btree root with %d records", n)
	}
	clear(dst)
	be.PutUint16(dst, level)
	be.PutUint16(dst[2:], uint16(n))
	copy(dst[4:4+8*n], src[hdr:hdr+8*n])
	copy(dst[4+8*dmax:4+8*dmax+8*n], src[hdr+8*smax:hdr+8*smax+8*n])
	return nil
}

// logDinodeToDisk converts the log's host-endian (little-endian) inode core into the on-disk
// big-endian one, field by field (the offsets are the same), as xfs_log_dinode_to_disk.
func logDinodeToDisk(ld, dip []byte, lsn uint64) error {
	le := binary.LittleEndian
	version := ld[4]
	core := 96 // v2: up to di_next_unlinked, which the log never carries
	if version >= 3 {
		core = 176
	}
	if len(ld) < core || len(dip) < core {
		return corruptf("inode log item: core of %d bytes", len(ld))
	}
	var flags2 uint64
	if version >= 3 {
		flags2 = le.Uint64(ld[120:])
	}
	u16 := func(o int) { be.PutUint16(dip[o:], le.Uint16(ld[o:])) }
	u32 := func(o int) { be.PutUint32(dip[o:], le.Uint32(ld[o:])) }
	u64 := func(o int) { be.PutUint64(dip[o:], le.Uint64(ld[o:])) }
	ts := func(o int) {
		if flags2&diflag2Bigtime != 0 {
			u64(o)
		} else {
			u32(o)
			u32(o + 4)
		}
	}
	u16(0)
	u16(2)
	dip[4], dip[5] = ld[4], ld[5]
	u16(6)
	for _, o := range []int{8, 12, 16} {
		u32(o)
	}
	u16(20)
	u16(22)
	ts(32)
	ts(40)
	ts(48)
	u64(56)
	u64(64)
	u32(72)
	if flags2&diflag2Nrext64 != 0 {
		u64(24)
		u32(76)
		be.PutUint16(dip[80:], 0)
	} else {
		u32(76)
		u16(80)
		if version >= 3 {
			clear(dip[24:32])
		} else {
			clear(dip[24:30])
			be.PutUint16(dip[30:], 0) // the flush count restarts, as recovery resets it
		}
	}
	dip[82], dip[83] = ld[82], ld[83]
	u32(84)
	u16(88)
	u16(90)
	u32(92)
	// di_next_unlinked (96) stays as on disk: the log holds a placeholder there.
	if version >= 3 {
		u64(104)
		be.PutUint64(dip[112:], lsn)
		u64(120)
		u32(128)
		clear(dip[132:144])
		ts(144)
		u64(152)
		copy(dip[160:176], ld[160:176])
	}
	return nil
}

// recoverLog replays the log into an overlay over the volume. It returns a nil view when the log is
// clean, and the number of transactions replayed.
func (f *FS) recoverLog(l *xlog, head int64) (io.ReaderAt, int, error) {
	rblk, err := l.lastRecord(head)
	if err != nil {
		return nil, 0, err
	}
	hdr := make([]byte, bbSize)
	if err := l.readBB(hdr, rblk); err != nil {
		return nil, 0, err
	}
	tail := int64(uint32(be.Uint64(hdr[24:])))
	if tail >= l.bbs {
		return nil, 0, corruptf("log tail at block %d of %d", tail, l.bbs)
	}
	open := map[uint32]*transaction{}
	var committed []*transaction
	var held int64
	blk := tail
	for seen := int64(0); blk != head%l.bbs; {
		rec, next, err := l.record(blk, f.sb.crc)
		if err != nil {
			// A torn or damaged record ends the log, as the kernel's head verification does.
			break
		}
		if seen += (next - blk + l.bbs) % l.bbs; seen > l.bbs || next == blk {
			return nil, 0, corruptf("log records from the tail at %d do not reach the head at %d", tail, head)
		}
		if held += int64(len(rec.data)); held > 2*l.bbs*bbSize {
			return nil, 0, corruptf("log holds more than its size")
		}
		if err := addRecord(open, &committed, rec); err != nil {
			return nil, 0, err
		}
		blk = next
	}
	if len(committed) == 0 {
		return nil, 0, nil
	}
	f.intents = unfinishedIntents(committed)
	rc := &recovery{f: f, bufs: map[[2]int64]*rbuf{}, owner: map[int64]*rbuf{}, cancels: map[[2]int64]int{},
		dirty: map[[2]int64]uint64{}, limit: 2*l.bbs*bbSize + 64<<20}
	if err := rc.replay(committed); err != nil {
		return nil, 0, err
	}
	keys := make([]int64, 0, len(rc.owner))
	for k := range rc.owner {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	// One patch per run of blocks whose newest copies lie next to each other in one buffer.
	var patches []fsys.Patch
	for i := 0; i < len(keys); {
		o := rc.owner[keys[i]]
		j := i + 1
		for j < len(keys) && keys[j] == keys[i]+int64(j-i) && rc.owner[keys[j]] == o {
			j++
		}
		patches = append(patches, fsys.Patch{Off: keys[i] * bbSize, Len: int64(j-i) * bbSize,
			Src: bytes.NewReader(o.b), SrcOff: (keys[i] - o.daddr) * bbSize})
		i = j
	}
	view, err := fsys.NewOverlay(f.r, f.size, patches)
	if err != nil {
		return nil, 0, err
	}
	return view, len(committed), nil
}

// addRecord splits a record's data into operations and feeds them to their transactions.
func addRecord(open map[uint32]*transaction, committed *[]*transaction, rec logRecord) error {
	d := rec.data
	for off, ops := 0, rec.ops; off < len(d) && ops > 0; ops-- {
		if off+12 > len(d) {
			return corruptf("log record at block %d: operation header past its end", rec.blk)
		}
		tid, n := be.Uint32(d[off:]), int(be.Uint32(d[off+4:]))
		client, flags := d[off+8], d[off+9]
		off += 12
		if n < 0 || n > len(d)-off {
			return corruptf("log record at block %d: operation of %d bytes", rec.blk, n)
		}
		op := d[off : off+n]
		off += n
		if client != clientTrans && client != clientLog {
			return corruptf("log record at block %d: operation of client %#x", rec.blk, client)
		}
		t := open[tid]
		if flags&opStart != 0 {
			if t == nil {
				open[tid] = &transaction{lsn: rec.lsn}
			}
			continue
		}
		if t == nil {
			continue // started before the tail, or the unmount record: nothing to replay
		}
		flags &^= opEnd
		if flags&opWasCont != 0 {
			flags &^= opContinue
		}
		var err error
		switch flags {
		case 0, opContinue:
			err = t.addOp(op, false)
		case opWasCont:
			err = t.addOp(op, true)
		case opCommit:
			*committed = append(*committed, t)
			delete(open, tid)
		case opUnmount:
		default:
			err = corruptf("log record at block %d: operation flags %#x", rec.blk, flags)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
