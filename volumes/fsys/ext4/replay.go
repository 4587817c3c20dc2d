package ext4

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// replayJournal replays the journal of f (opened on the raw volume) and returns the replayed view, or
// a nil view when the log holds nothing to replay. The state says what was done.
func (f *FS) replayJournal() (io.ReaderAt, fsys.VolumeState, error) {
	raw := make([]byte, superblockSize)
	if _, err := f.r.ReadAt(raw, superblockOffset); err != nil {
		return nil, fsys.VolumeState{}, fmt.Errorf("reading superblock: %w", err)
	}
	le := binary.LittleEndian
	ino := le.Uint32(raw[sbJournalInum:])
	if f.sb.compat&compatHasJournal == 0 {
		return nil, fsys.VolumeState{}, fmt.Errorf("needs_recovery is set but the filesystem has no journal: %w", errCorrupt)
	}
	if ino == 0 {
		u := raw[sbJournalUUID : sbJournalUUID+16]
		return nil, fsys.VolumeState{}, fmt.Errorf("the journal is on an external device (UUID %x-%x-%x-%x-%x, device %#x) that is not part of this disk set",
			u[0:4], u[4:6], u[6:8], u[8:10], u[10:16], le.Uint32(raw[sbJournalDev:]))
	}
	in, err := f.inode(ino)
	if err != nil {
		return nil, fsys.VolumeState{}, fmt.Errorf("journal inode %d: %w", ino, err)
	}
	d, err := f.dataOf(in)
	if err != nil {
		return nil, fsys.VolumeState{}, fmt.Errorf("journal inode %d: %w", ino, err)
	}
	j, err := parseJournal(d, in.st.Size, f.sb.blockSize)
	if err != nil {
		return nil, fsys.VolumeState{}, err
	}
	res, err := j.replay(f.volumeBlocks())
	if err != nil {
		return nil, fsys.VolumeState{}, err
	}
	st := fsys.VolumeState{State: fsys.StateReplayed,
		Detail: fmt.Sprintf("ext4 journal replayed in memory: %d transactions, %d blocks", res.transactions, len(res.blocks))}
	if res.stopped != "" {
		st.Detail += "; replay stopped at the last good commit, " + res.stopped
	}
	fc, err := j.fastCommitPending(res.nextSeq)
	if err != nil {
		return nil, fsys.VolumeState{}, err
	}
	if fc {
		st = fsys.VolumeState{State: fsys.StateDirty,
			Detail: st.Detail + "; fast commits after it were not replayed: the last fsyncs are missing"}
	}
	if j.start == 0 || len(res.blocks) == 0 {
		if !fc {
			st.Detail = "ext4 journal needed recovery but held no committed transaction"
			if res.stopped != "" { // damage before the first commit: say what, as for a later one
				st.Detail += "; the scan stopped at " + res.stopped
			}
		}
		return nil, st, nil
	}
	view, err := fsys.NewOverlay(f.r, f.size, res.patches(j))
	if err != nil {
		return nil, fsys.VolumeState{}, err
	}
	return view, st, nil
}
