package ext4

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// zeros reads as zeros everywhere: the volume under a fuzzed journal's overlay.
type zeros struct{}

func (zeros) ReadAt(p []byte, _ int64) (int, error) { clear(p); return len(p), nil }

// FuzzJournal parses and replays a journal (its own block size, 1 KiB to 64 KiB) over a 1 GiB
// volume, then reads the replayed blocks: no panic, no hang, and never more replayed blocks than
// the log has. Seeds in testdata/fuzz/FuzzJournal are compact copies of real journals
// (TestJournalSeeds).
func FuzzJournal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		done := make(chan bool, 1)
		go func() {
			defer func() { done <- true }()
			fuzzJournal(t, b)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<16)
			t.Fatalf("replay of a %d-byte journal still running after 10s:\n%s", len(b), buf[:runtime.Stack(buf, true)])
		}
	})
}

func fuzzJournal(t *testing.T, b []byte) {
	{
		if len(b) < 16 {
			return
		}
		bs := binary.BigEndian.Uint32(b[12:])
		if bs < 1024 || bs > 65536 || bs&(bs-1) != 0 {
			bs = 1024
		}
		const volBlocks = 1 << 20
		j, err := parseJournal(bytes.NewReader(b), int64(len(b)), bs)
		if err != nil {
			return
		}
		res, err := j.replay(volBlocks)
		if err != nil {
			return
		}
		if len(res.blocks) > int(j.last) {
			t.Errorf("%d replayed blocks from a %d-block log", len(res.blocks), j.last)
		}
		_, _ = j.fastCommitPending(res.nextSeq)
		o, err := fsys.NewOverlay(zeros{}, volBlocks*int64(bs), res.patches(j))
		if err != nil {
			return
		}
		buf := make([]byte, bs)
		for nr := range res.blocks {
			if _, err := o.ReadAt(buf, int64(nr)*int64(bs)); err != nil && err != io.EOF {
				t.Errorf("reading replayed block %d: %v", nr, err)
				return
			}
		}
	}
}
