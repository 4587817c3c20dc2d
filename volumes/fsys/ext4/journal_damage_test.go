package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// liveJournal is a snapshot of a live 1 KiB-block volume with a few fsync'd transactions in its
// journal, with the journal's parsed superblock and its data stream.
type liveJournal struct {
	snap string
	raw  *FS
	d    *data
	j    *journal
	res  *replayResult
}

func newLiveJournal(t *testing.T, mkfs []string, opts string, perTx int) *liveJournal {
	t.Helper()
	cmd := append([]string{"mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-J", "size=1"}, mkfs...)
	img, mnt := testfix.MountLive(t, 16<<20, cmd, opts)
	l := &liveVolume{t: t, img: img, mnt: mnt}
	for i := range 4 {
		l.writeSynced(fmt.Sprintf("t%d", i), names(fmt.Sprintf("t%d-", i), perTx), 1)
	}
	lj := &liveJournal{snap: l.snapshot()}
	lj.raw = openSnapshot(t, lj.snap, Options{NoReplay: true})
	in, err := lj.raw.inode(8)
	if err != nil {
		t.Fatal(err)
	}
	if lj.d, err = lj.raw.dataOf(in); err != nil {
		t.Fatal(err)
	}
	if lj.j, err = parseJournal(lj.d, in.st.Size, 1024); err != nil {
		t.Fatal(err)
	}
	if lj.res, err = lj.j.replay(lj.raw.volumeBlocks()); err != nil {
		t.Fatal(err)
	}
	if lj.res.transactions < 4 || lj.res.stopped != "" {
		t.Fatalf("the live journal holds %d transactions (stopped: %q)", lj.res.transactions, lj.res.stopped)
	}
	return lj
}

// compact copies the live part of the journal into a small journal of its own: block 0 a superblock
// whose log starts at block 1, then the blocks from the start to the last commit. Checksums of the
// log blocks do not depend on where they lie; the superblock's is recomputed.
// At most maxTx transactions are kept (0: all).
func (lj *liveJournal) compact(t *testing.T, maxTx int) []byte {
	t.Helper()
	j := lj.j
	bs := int64(j.bs)
	var blocks [][]byte
	commits := 0
	for p := j.start; p != lj.res.end && (maxTx == 0 || commits < maxTx); {
		b := make([]byte, bs)
		if _, err := lj.d.ReadAt(b, int64(p)*bs); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
		if binary.BigEndian.Uint32(b) == jbdMagic && binary.BigEndian.Uint32(b[4:]) == jbdCommit {
			commits++
		}
		if p++; p >= j.last {
			p = j.first
		}
	}
	sb := make([]byte, bs)
	if _, err := lj.d.ReadAt(sb, 0); err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	be.PutUint32(sb[0x10:], uint32(len(blocks)+1)) // maxlen
	be.PutUint32(sb[0x14:], 1)                     // first
	be.PutUint32(sb[0x1C:], 1)                     // start
	be.PutUint32(sb[0x28:], be.Uint32(sb[0x28:])&^jbdIncompatFastCommit)
	resumSuper(sb)
	return bytes.Join(append([][]byte{sb}, blocks...), nil)
}

// resumSuper recomputes a v2/v3 journal superblock's checksum after an edit.
func resumSuper(sb []byte) {
	if binary.BigEndian.Uint32(sb[0x28:])&(jbdIncompatCsumV2|jbdIncompatCsumV3) == 0 {
		return
	}
	clear(sb[0xFC:0x100])
	binary.BigEndian.PutUint32(sb[0xFC:], crc32c(^uint32(0), sb[:journalSuperSize]))
}

// resumTail recomputes the tail checksum of a descriptor or revoke block.
func resumTail(j *journal, b []byte) {
	clear(b[len(b)-4:])
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32c(j.seed, b))
}

func replayBytes(t *testing.T, b []byte) (*journal, *replayResult) {
	t.Helper()
	j, err := parseJournal(bytes.NewReader(b), int64(len(b)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.replay(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return j, res
}

// blockOfType returns the index of the last (or first) block of the compact journal of a type.
func blockOfType(b []byte, typ uint32, last bool) int {
	found := -1
	for i := 1; i*1024 < len(b); i++ {
		blk := b[i*1024:]
		if binary.BigEndian.Uint32(blk) == jbdMagic && binary.BigEndian.Uint32(blk[4:]) == typ {
			found = i
			if !last {
				return i
			}
		}
	}
	return found
}

// TestJournalDamage replays damaged copies of a real journal: each ends at the last good commit or
// fails cleanly, within the log's bounds.
func TestJournalDamage(t *testing.T) {
	t.Parallel()
	lj := newLiveJournal(t, nil, "", 3)
	good := lj.compact(t, 0)
	j, res := replayBytes(t, good)
	if res.transactions != lj.res.transactions || len(res.blocks) != len(lj.res.blocks) || res.stopped != "" {
		t.Fatalf("the compact journal replays %d transactions, %d blocks (stopped %q); the original %d, %d",
			res.transactions, len(res.blocks), res.stopped, lj.res.transactions, len(lj.res.blocks))
	}
	all := res.transactions
	lastCommit := blockOfType(good, jbdCommit, true)
	lastDesc := blockOfType(good, jbdDescriptor, true)
	for _, c := range []struct {
		name    string
		edit    func(b []byte)
		wantTx  uint32 // transactions replayed
		wantErr string // a parse error instead
		stop    string // in the stop reason
	}{
		{name: "commit checksum", edit: func(b []byte) { b[lastCommit*1024+0x10] ^= 1 }, wantTx: all - 1, stop: "commit block"},
		{name: "data block checksum", edit: func(b []byte) { b[(lastDesc+1)*1024+100] ^= 1 }, wantTx: all - 1, stop: "bad checksum"},
		{name: "descriptor checksum", edit: func(b []byte) { b[lastDesc*1024+20] ^= 1 }, wantTx: all - 1, stop: "descriptor block"},
		{name: "superblock checksum", edit: func(b []byte) { b[0x18] ^= 1 }, wantErr: "superblock checksum"},
		{name: "start outside the log", edit: func(b []byte) {
			binary.BigEndian.PutUint32(b[0x1C:], 1<<30)
			resumSuper(b)
		}, wantErr: "outside the log"},
		{name: "journal larger than its file", edit: func(b []byte) {
			binary.BigEndian.PutUint32(b[0x10:], 1<<31)
			resumSuper(b)
		}, wantErr: "does not fit"},
		{name: "transaction claiming more blocks than the log", edit: func(b []byte) {
			d := b[lastDesc*1024 : (lastDesc+1)*1024]
			for off := 12; off+16 <= 1024-4; off += 16 { // tags with no last flag: (1024-16)/16 blocks
				binary.BigEndian.PutUint32(d[off:], uint32(off))
				binary.BigEndian.PutUint32(d[off+4:], tagSameUUID)
			}
			resumTail(j, d)
		}, wantTx: all - 1, stop: ""},
		{name: "tag naming block 2^32+", edit: func(b []byte) {
			d := b[lastDesc*1024 : (lastDesc+1)*1024]
			binary.BigEndian.PutUint32(d[12+8:], 0xFFFFFFFF) // t_blocknr_high
			resumTail(j, d)
		}, wantTx: all - 1, stop: "beyond the volume"},
		{name: "revoke block claiming more than a block", edit: func(b []byte) {
			r := b[lastDesc*1024 : (lastDesc+1)*1024]
			binary.BigEndian.PutUint32(r[4:], jbdRevoke)
			binary.BigEndian.PutUint32(r[12:], 1<<31)
			resumTail(j, r)
		}, wantTx: all - 1, stop: "claims"},
		{name: "log of revoke blocks only", edit: func(b []byte) {
			seq := binary.BigEndian.Uint32(b[0x18:])
			for i := 1; i*1024 < len(b); i++ {
				r := b[i*1024 : (i+1)*1024]
				clear(r)
				binary.BigEndian.PutUint32(r, jbdMagic)
				binary.BigEndian.PutUint32(r[4:], jbdRevoke)
				binary.BigEndian.PutUint32(r[8:], seq)
				binary.BigEndian.PutUint32(r[12:], 1020)
				for off := 16; off+8 <= 1020; off += 8 {
					binary.BigEndian.PutUint64(r[off:], uint64(i))
				}
				resumTail(j, r)
			}
		}, wantTx: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			c.edit(b)
			jj, err := parseJournal(bytes.NewReader(b), int64(len(b)), 1024)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("parse: %v, want an error about %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := jj.replay(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			if res.transactions != c.wantTx || !strings.Contains(res.stopped, c.stop) {
				t.Errorf("%d transactions (stopped: %q), want %d stopping on %q", res.transactions, res.stopped, c.wantTx, c.stop)
			}
			if len(res.blocks) > int(jj.last) {
				t.Errorf("%d blocks kept from a %d-block log", len(res.blocks), jj.last)
			}
		})
	}
}

// TestJournalBadCommitMatchesE2fsck corrupts the last commit block of a real snapshot in place. The
// kernel refuses to mount such a volume ("journal transaction N is corrupt"); e2fsck, with the same
// recovery code, replays up to the commit before and goes on. Its replay of a writable copy, mounted
// by the kernel, is the judge: we too stop at the last good commit, entry by entry.
func TestJournalBadCommitMatchesE2fsck(t *testing.T) {
	t.Parallel()
	lj := newLiveJournal(t, nil, "", 3)
	bs := int64(lj.j.bs)
	last := lj.res.end - 1
	if lj.res.end == lj.j.first {
		last = lj.j.last - 1
	}
	off := physOffset(t, lj.d, int64(last)*bs)
	f, err := os.OpenFile(lj.snap, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	f.ReadAt(b, off)
	if binary.BigEndian.Uint32(b) != jbdMagic {
		t.Fatalf("journal block %d is no journal block", last)
	}
	f.ReadAt(b, off+0x10)
	b[0] ^= 0xFF
	f.WriteAt(b, off+0x10)
	f.Close()
	ours := openSnapshot(t, lj.snap, Options{})
	st := ours.VolumeState()
	if st.State != fsys.StateReplayed || !strings.Contains(st.Detail, "last good commit") {
		t.Errorf("state %+v", st)
	}
	cp := filepath.Join(t.TempDir(), "judge.img")
	testfix.CopyFile(t, lj.snap, cp)
	out, err := exec.Command("e2fsck", "-y", "-E", "journal_only", cp).CombinedOutput()
	if !strings.Contains(string(out), "corrupt") {
		t.Errorf("e2fsck did not notice the corrupt transaction (%v): %s", err, out)
	}
	if needsRecovery(t, cp) {
		t.Fatalf("e2fsck left the journal unreplayed: %s", out)
	}
	mnt := mountRO(t, cp)
	for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true, Ignore: treecmp.Atime}) {
		t.Error(d)
	}
}

// physOffset maps an offset in an inode's data to the volume's byte offset.
func physOffset(t *testing.T, d *data, off int64) int64 {
	bs := int64(d.f.sb.blockSize)
	blk := uint64(off / bs)
	for _, r := range d.runs {
		if blk >= r.logical && blk < r.logical+r.length {
			return int64(r.physical+blk-r.logical)*bs + off%bs
		}
	}
	t.Fatalf("offset %d not mapped", off)
	return 0
}

// TestJournalBadSuperblockStillOpens: a journal superblock with a bad checksum leaves the volume
// dirty, with the reason, and its on-disk tree readable.
func TestJournalBadSuperblockStillOpens(t *testing.T) {
	t.Parallel()
	lj := newLiveJournal(t, nil, "", 3)
	off := physOffset(t, lj.d, 0x18)
	f, err := os.OpenFile(lj.snap, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 1
	f.WriteAt(b, off)
	f.Close()
	v := openSnapshot(t, lj.snap, Options{})
	st := v.VolumeState()
	if st.State != fsys.StateDirty || !strings.Contains(st.Detail, "checksum") {
		t.Errorf("state %+v, want dirty naming the checksum", st)
	}
	if _, err := v.ReadDir("."); err != nil {
		t.Error(err)
	}
}

// TestJournalSeeds writes the compact journals the fuzz target starts from, when asked:
// JOURNAL_SEEDS=1 go test -run TestJournalSeeds ./volumes/fsys/ext4
func TestJournalSeeds(t *testing.T) {
	if os.Getenv("JOURNAL_SEEDS") == "" {
		t.Skip("set JOURNAL_SEEDS=1 to rewrite testdata/fuzz/FuzzJournal")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzJournal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mkfs []string
		opts string
	}{
		"csum-v3-64bit": {[]string{"-O", "64bit"}, ""},
		"csum-v1-32bit": {[]string{"-O", "^metadata_csum,^64bit"}, "journal_checksum"},
		"plain":         {[]string{"-O", "^metadata_csum"}, ""},
	} {
		b := newLiveJournal(t, c.mkfs, c.opts, 1).compact(t, 1)
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
