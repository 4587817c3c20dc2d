package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// The jbd2 journal (big-endian on disk). Replay follows the kernel's fs/jbd2/recovery.c: scan from the
// superblock's start for transactions whose commit block is present and whose checksums hold, then
// write each logged block's latest copy home unless a later revoke record cancels it. Here "write
// home" means a patch in an overlay: the source is never written.
const (
	jbdMagic      = 0xC03B3998
	jbdDescriptor = 1
	jbdCommit     = 2
	jbdSuperV1    = 3
	jbdSuperV2    = 4
	jbdRevoke     = 5

	jbdCompatChecksum = 0x1 // v1: crc32_be of each transaction's blocks in its commit block

	jbdIncompatRevoke     = 0x1
	jbdIncompat64bit      = 0x2
	jbdIncompatAsync      = 0x4 // commit blocks written without waiting for the data: checksums decide
	jbdIncompatCsumV2     = 0x8
	jbdIncompatCsumV3     = 0x10
	jbdIncompatFastCommit = 0x20
	jbdIncompatKnown      = jbdIncompatRevoke | jbdIncompat64bit | jbdIncompatAsync | jbdIncompatCsumV2 |
		jbdIncompatCsumV3 | jbdIncompatFastCommit

	tagEscape   = 0x1 // the block began with jbdMagic, which the journal copy has zeroed
	tagSameUUID = 0x2 // no 16-byte UUID follows the tag
	tagLast     = 0x8

	jbdCRC32Type       = 1 // commit block checksum type of v1 checksums
	jbdCRC32CType      = 4 // journal superblock checksum type for v2/v3
	jbdDefaultFCBlocks = 256
	journalSuperSize   = 1024
)

// ext4 superblock fields about the journal.
const (
	compatHasJournal = 0x4
	sbJournalUUID    = 0xD0
	sbJournalInum    = 0xE0
	sbJournalDev     = 0xE4
	fcTagHead        = 0x9 // first tag of a fast-commit area (struct ext4_fc_tl)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c(seed, data): no inversion before or after.
func crc32c(seed uint32, b []byte) uint32 { return ^crc32.Update(^seed, castagnoli, b) }

// crc32be is the kernel's crc32_be: MSB-first CRC-32 (polynomial 0x04C11DB7), no inversions.
func crc32be(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ crcBETable[byte(crc>>24)^c]
	}
	return crc
}

var crcBETable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// journal is a parsed jbd2 superblock over the journal's bytes.
type journal struct {
	r           io.ReaderAt // the journal's bytes, block 0 being its superblock
	bs          uint32
	first, last uint32 // the circular log is blocks [first, last)
	seq, start  uint32 // the first transaction to replay and where it starts; start 0 means clean
	compat      uint32
	incompat    uint32
	seed        uint32 // crc32c of the UUID, for v2/v3 checksums
	fcFirst     uint32 // first fast-commit block, when the fast_commit feature is on
	fcEnd       uint32
}

func (j *journal) has(f uint32) bool { return j.incompat&f != 0 }
func (j *journal) csumV23() bool     { return j.has(jbdIncompatCsumV2 | jbdIncompatCsumV3) }

// tagBytes is the size of one descriptor tag, as the kernel's journal_tag_bytes.
func (j *journal) tagBytes() int {
	if j.has(jbdIncompatCsumV3) {
		return 16
	}
	n := 12
	if j.has(jbdIncompatCsumV2) {
		n += 2
	}
	if j.has(jbdIncompat64bit) {
		return n
	}
	return n - 4
}

// parseJournal reads the journal superblock from r (the journal's bytes, size of them) for a
// filesystem of blockSize-byte blocks.
func parseJournal(r io.ReaderAt, size int64, blockSize uint32) (*journal, error) {
	b := make([]byte, journalSuperSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading the journal superblock: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(b) != jbdMagic {
		return nil, fmt.Errorf("journal superblock magic %#x: %w", be.Uint32(b), errCorrupt)
	}
	typ := be.Uint32(b[4:])
	if typ != jbdSuperV1 && typ != jbdSuperV2 {
		return nil, fmt.Errorf("journal superblock type %d: %w", typ, errCorrupt)
	}
	j := &journal{r: r, bs: be.Uint32(b[0xC:]), first: be.Uint32(b[0x14:]), seq: be.Uint32(b[0x18:]), start: be.Uint32(b[0x1C:])}
	maxlen := be.Uint32(b[0x10:])
	if j.bs != blockSize {
		return nil, fmt.Errorf("journal block size %d differs from the filesystem's %d: %w", j.bs, blockSize, errCorrupt)
	}
	if uint64(maxlen)*uint64(j.bs) > uint64(size) || maxlen < 2 || j.first < 1 || j.first >= maxlen {
		return nil, fmt.Errorf("journal of %d blocks from %d does not fit its %d bytes: %w", maxlen, j.first, size, errCorrupt)
	}
	j.last = maxlen
	if typ == jbdSuperV2 {
		j.compat, j.incompat = be.Uint32(b[0x24:]), be.Uint32(b[0x28:])
	}
	if bad := j.incompat &^ jbdIncompatKnown; bad != 0 {
		return nil, fmt.Errorf("journal has unsupported incompatible features %#x", bad)
	}
	if j.csumV23() {
		if b[0x50] != jbdCRC32CType {
			return nil, fmt.Errorf("journal checksum type %d is not crc32c: %w", b[0x50], errCorrupt)
		}
		want := be.Uint32(b[0xFC:])
		clear(b[0xFC:0x100])
		if got := crc32c(^uint32(0), b); got != want {
			return nil, fmt.Errorf("journal superblock checksum %#x, expected %#x: %w", got, want, errCorrupt)
		}
		j.seed = crc32c(^uint32(0), b[0x30:0x40])
	}
	if j.has(jbdIncompatFastCommit) {
		n := be.Uint32(b[0x54:])
		if n == 0 {
			n = jbdDefaultFCBlocks
		}
		if n >= maxlen-j.first {
			return nil, fmt.Errorf("journal of %d blocks cannot hold %d fast-commit blocks: %w", maxlen, n, errCorrupt)
		}
		j.last = maxlen - n
		j.fcFirst, j.fcEnd = j.last+1, maxlen
	}
	if j.start != 0 && (j.start < j.first || j.start >= j.last) {
		return nil, fmt.Errorf("journal start block %d outside the log [%d, %d): %w", j.start, j.first, j.last, errCorrupt)
	}
	return j, nil
}

// logged is the latest committed copy of a filesystem block in the journal.
type logged struct {
	pos     uint32 // journal block
	tx      uint32 // transactions since the start of the replay
	escaped bool
}

// replayResult is what a scan of the log found.
type replayResult struct {
	blocks       map[uint64]logged
	transactions uint32
	nextSeq      uint32 // the first transaction id not replayed
	stopped      string // why the scan ended early (a damaged block), "" at a clean end
	wrapped      bool   // the committed log runs past the end of the journal back to its start
	end          uint32 // the journal block after the last good commit
}

// replay scans the log and returns the latest copy of every block that committed transactions
// logged and no later revoke cancelled. volBlocks bounds the block numbers tags may name. Memory is
// bounded by the log's length: one map entry per journal block at most.
func (j *journal) replay(volBlocks uint64) (*replayResult, error) {
	res := &replayResult{blocks: map[uint64]logged{}, nextSeq: j.seq, end: j.start}
	if j.start == 0 {
		return res, nil
	}
	be := binary.BigEndian
	bs := int(j.bs)
	blk := make([]byte, bs)
	data := make([]byte, bs)
	read := func(buf []byte, pos uint32) error {
		if _, err := j.r.ReadAt(buf, int64(pos)*int64(bs)); err != nil {
			return fmt.Errorf("reading journal block %d: %w", pos, err)
		}
		return nil
	}
	wrapped := false
	next := func(p uint32) uint32 {
		if p+1 >= j.last {
			wrapped = true
			return j.first
		}
		return p + 1
	}
	tail := 0
	if j.csumV23() {
		tail = 4
	}
	type pendingTag struct {
		blk     uint64
		pos     uint32
		escaped bool
	}
	var pending []pendingTag
	var revokes, pendingRevokes []uint32 // journal blocks of revoke blocks; their transactions in revokeTx
	var revokeTx []uint32
	crc := ^uint32(0)
	limit := j.last - j.first // a scan never reads more blocks than the log holds
	visited := uint32(0)
	pos := j.start
	seq := j.seq
	stop := func(format string, args ...any) {
		res.stopped = fmt.Sprintf("transaction %d: ", seq) + fmt.Sprintf(format, args...)
	}
scan:
	for visited < limit {
		if err := read(blk, pos); err != nil {
			return nil, err
		}
		visited++
		if be.Uint32(blk) != jbdMagic || be.Uint32(blk[8:]) != seq {
			break
		}
		switch be.Uint32(blk[4:]) {
		case jbdDescriptor:
			if tail > 0 && !j.tailOK(blk) {
				stop("descriptor block %d has a bad checksum", pos)
				break scan
			}
			if j.compat&jbdCompatChecksum != 0 {
				crc = crc32be(crc, blk)
			}
			tb := j.tagBytes()
			for off := 12; off+tb <= bs-tail; {
				tag := blk[off:]
				flags := be.Uint16(tag[6:])
				nr := uint64(be.Uint32(tag))
				if j.has(jbdIncompat64bit) {
					nr |= uint64(be.Uint32(tag[8:])) << 32
				}
				off += tb
				if flags&tagSameUUID == 0 {
					off += 16
				}
				if visited >= limit {
					stop("a descriptor block claims more blocks than the log holds")
					break scan
				}
				pos = next(pos)
				visited++
				if err := read(data, pos); err != nil {
					return nil, err
				}
				if !j.dataOK(tag, seq, data) {
					stop("the copy of block %d at journal block %d has a bad checksum", nr, pos)
					break scan
				}
				if j.compat&jbdCompatChecksum != 0 {
					crc = crc32be(crc, data)
				}
				if nr >= volBlocks {
					stop("a tag names block %d beyond the volume's %d blocks", nr, volBlocks)
					break scan
				}
				pending = append(pending, pendingTag{nr, pos, flags&tagEscape != 0})
				if flags&tagLast != 0 {
					break
				}
			}
		case jbdCommit:
			if !j.commitOK(blk, crc) {
				stop("commit block %d has a bad checksum", pos)
				break scan
			}
			for _, t := range pending {
				res.blocks[t.blk] = logged{pos: t.pos, tx: res.transactions, escaped: t.escaped}
			}
			for _, r := range pendingRevokes {
				revokes = append(revokes, r)
				revokeTx = append(revokeTx, res.transactions)
			}
			pending, pendingRevokes = pending[:0], pendingRevokes[:0]
			res.transactions++
			res.wrapped = wrapped
			if res.end = pos + 1; res.end >= j.last {
				res.end = j.first
			}
			seq++
			crc = ^uint32(0)
		case jbdRevoke:
			if tail > 0 && !j.tailOK(blk) {
				stop("revoke block %d has a bad checksum", pos)
				break scan
			}
			if n := be.Uint32(blk[12:]); n < 16 || int(n) > bs-tail {
				stop("revoke block %d claims %d bytes", pos, n)
				break scan
			}
			pendingRevokes = append(pendingRevokes, pos)
		default:
			break scan
		}
		pos = next(pos)
	}
	res.nextSeq = seq
	// A revoke record of transaction T cancels copies logged by T and earlier ones; since a block's
	// latest copy is the only one kept, it goes when a revoke of the same or a later transaction names it.
	rsize := 4
	if j.has(jbdIncompat64bit) {
		rsize = 8
	}
	for i, rpos := range revokes {
		if err := read(blk, rpos); err != nil {
			return nil, err
		}
		n := int(be.Uint32(blk[12:]))
		for off := 16; off+rsize <= n; off += rsize {
			nr := uint64(be.Uint32(blk[off:]))
			if rsize == 8 {
				nr = be.Uint64(blk[off:])
			}
			if l, ok := res.blocks[nr]; ok && l.tx <= revokeTx[i] {
				delete(res.blocks, nr)
			}
		}
	}
	return res, nil
}

// tailOK checks the crc32c in the last 4 bytes of a descriptor or revoke block (v2/v3).
func (j *journal) tailOK(blk []byte) bool {
	n := len(blk)
	want := binary.BigEndian.Uint32(blk[n-4:])
	c := crc32c(j.seed, blk[:n-4])
	return crc32c(c, []byte{0, 0, 0, 0}) == want
}

// dataOK checks a logged block against its tag's checksum (v2: low 16 bits, v3: 32 bits).
func (j *journal) dataOK(tag []byte, seq uint32, data []byte) bool {
	if !j.csumV23() {
		return true
	}
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	c := crc32c(crc32c(j.seed, s[:]), data)
	if j.has(jbdIncompatCsumV3) {
		return binary.BigEndian.Uint32(tag[12:]) == c
	}
	return binary.BigEndian.Uint16(tag[4:]) == uint16(c)
}

// commitOK checks a commit block: its own crc32c (v2/v3), or the v1 crc32_be of the transaction.
func (j *journal) commitOK(blk []byte, crc uint32) bool {
	be := binary.BigEndian
	found := be.Uint32(blk[0x10:])
	switch {
	case j.csumV23():
		c := crc32c(j.seed, blk[:0x10])
		c = crc32c(c, []byte{0, 0, 0, 0})
		return crc32c(c, blk[0x14:]) == found
	case j.compat&jbdCompatChecksum != 0:
		typ, size := blk[0xC], blk[0xD]
		return typ == jbdCRC32Type && size == 4 && found == crc || typ == 0 && size == 0 && found == 0
	}
	return true
}

// fastCommitPending tells whether the fast-commit area holds commits that follow the replayed log:
// its first tag is a head naming the transaction after the last one replayed.
func (j *journal) fastCommitPending(nextSeq uint32) (bool, error) {
	if !j.has(jbdIncompatFastCommit) || j.fcFirst >= j.fcEnd {
		return false, nil
	}
	b := make([]byte, 12)
	if _, err := j.r.ReadAt(b, int64(j.fcFirst)*int64(j.bs)); err != nil {
		return false, fmt.Errorf("reading the fast-commit area: %w", err)
	}
	le := binary.LittleEndian
	return le.Uint16(b) == fcTagHead && le.Uint16(b[2:]) >= 8 && le.Uint32(b[8:]) == nextSeq, nil
}

// patches turns a replay's blocks into overlay patches over a volume of bs-byte blocks.
func (res *replayResult) patches(j *journal) []patch {
	bs := int64(j.bs)
	out := make([]patch, 0, len(res.blocks))
	for nr, l := range res.blocks {
		off, src := int64(nr)*bs, int64(l.pos)*bs
		if l.escaped {
			out = append(out, patch{Off: off, Len: 4, Src: bytes.NewReader(escapedMagic), SrcOff: 0},
				patch{Off: off + 4, Len: bs - 4, Src: j.r, SrcOff: src + 4})
			continue
		}
		out = append(out, patch{Off: off, Len: bs, Src: j.r, SrcOff: src})
	}
	return out
}

var escapedMagic = binary.BigEndian.AppendUint32(nil, jbdMagic)

type patch = fsys.Patch
