package ext4

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// liveVolume is an ext4 image mounted read-write on a loop device, the way a running guest has it.
type liveVolume struct {
	t   *testing.T
	img string
	mnt string
}

// mountLive makes an ext4 image with mke2fs args and mounts it read-write with the options given.
func mountLive(t *testing.T, size string, mkfs []string, opts string) *liveVolume {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSuffix(size, "M"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// 4 KiB blocks unless asked: mke2fs would pick 1 KiB ones for images this small.
	cmd := append([]string{"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096"}, mkfs...)
	img, mnt := testfix.MountLive(t, n<<20, cmd, opts)
	return &liveVolume{t: t, img: img, mnt: mnt}
}

func (l *liveVolume) snapshot() string { return testfix.Snapshot(l.t, l.img) }

// content is what file name holds: its own name over and over, so a file showing another file's
// blocks is caught by its bytes alone.
func content(name string, n int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%-15s\n", name)), n)
}

// writeSynced writes files and fsyncs each, then fsyncs their directory, like a careful application.
func (l *liveVolume) writeSynced(dir string, names []string, blocks int) {
	l.t.Helper()
	d := filepath.Join(l.mnt, dir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		l.t.Fatal(err)
	}
	for _, n := range names {
		f, err := os.Create(filepath.Join(d, n))
		if err != nil {
			l.t.Fatal(err)
		}
		if _, err := f.Write(content(n, blocks*256)); err != nil {
			l.t.Fatal(err)
		}
		if err := unix.Setxattr(f.Name(), "user.name", []byte(n), 0); err != nil {
			l.t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			l.t.Fatal(err)
		}
		f.Close()
	}
	l.fsyncDir(dir)
}

func (l *liveVolume) fsyncDir(dir string) {
	l.t.Helper()
	f, err := os.Open(filepath.Join(l.mnt, dir))
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		l.t.Fatal(err)
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// needsRecovery asks dumpe2fs whether the image's journal needs recovery.
func needsRecovery(t *testing.T, img string) bool {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Filesystem features:") {
			return strings.Contains(line, "needs_recovery")
		}
	}
	t.Fatalf("dumpe2fs printed no features: %s", out)
	return false
}

// openSnapshot opens an image read-only (without touching its access time) with our reader.
func openSnapshot(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return testfix.OpenImage(t, img, unix.O_NOATIME, func(r io.ReaderAt, n int64) (*FS, error) { return OpenWith(r, n, opt) })
}

// checkOwnContent reads every regular file of the tree and requires it to hold only its own name's
// pattern: no file may show another file's blocks.
func checkOwnContent(t *testing.T, v fsys.FS) int {
	t.Helper()
	n := 0
	err := fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(p, "lost+found") {
			return nil
		}
		b, err := fs.ReadFile(v, p)
		if err != nil {
			return err
		}
		want := fmt.Sprintf("%-15s\n", d.Name())
		if len(b)%len(want) != 0 || !bytes.Equal(b, bytes.Repeat([]byte(want), len(b)/len(want))) {
			t.Errorf("%s does not hold only its own bytes (%d bytes, starting %q)", p, len(b), b[:min(len(b), 32)])
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// judge compares our replayed view of snap with the kernel's replay of a writable copy of it, and
// checks that the snapshot file itself was left as it was.
func judge(t *testing.T, snap string, wantFiles int) *FS {
	t.Helper()
	if !needsRecovery(t, snap) {
		t.Fatal("dumpe2fs does not say needs_recovery: the snapshot is not dirty")
	}
	before := testfix.SourceID(t, snap)
	ours := openSnapshot(t, snap, Options{})
	if st := ours.VolumeState(); st.State != fsys.StateReplayed {
		t.Errorf("state %+v, want replayed", st)
	}
	if n := checkOwnContent(t, ours); n < wantFiles {
		t.Errorf("%d files in the replayed tree, want at least %d", n, wantFiles)
	}
	treecmp.MatchesKernelReplay(t, ours, snap, "", before)
	return ours
}

// TestJournalReplayMatchesKernel takes snapshots of live volumes at several moments and compares our
// replay of each with the kernel's, across the journal's checksum variants and block number sizes.
func TestJournalReplayMatchesKernel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		mkfs []string
		opts string
	}{
		{"csum-v3-64bit", nil, ""},
		{"no-csum-32bit", []string{"-O", "^metadata_csum,^64bit"}, ""},
		{"csum-v1", []string{"-O", "^metadata_csum"}, "journal_checksum"},
		{"csum-v1-async", []string{"-O", "^metadata_csum"}, "journal_async_commit,data=writeback"},
		{"1k-blocks", []string{"-b", "1024"}, ""},
		{"data-journal", nil, "data=journal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := mountLive(t, "32M", c.mkfs, c.opts)
			l.writeSynced("d", names("f", 50), 2)
			snap := l.snapshot()
			// Not vacuous: the on-disk state lacks what the journal holds.
			raw := openSnapshot(t, snap, Options{NoReplay: true})
			if st := raw.VolumeState(); st.State != fsys.StateDirty || st.Detail == "" {
				t.Errorf("no-replay state %+v, want dirty with a detail", st)
			}
			if ents, err := raw.ReadDir("d"); err == nil && len(ents) == 50 {
				t.Error("the on-disk state already shows all 50 files: nothing was left to replay")
			}
			judge(t, snap, 50)
		})
	}
}

// TestJournalReplayCheckpointMoments snapshots a volume after a sync of the filesystem (its metadata
// partly in place), after deleting and rewriting files over freed blocks, and after a global sync.
func TestJournalReplayCheckpointMoments(t *testing.T) {
	t.Parallel()
	l := mountLive(t, "32M", nil, "")
	l.writeSynced("a", names("old", 40), 4)
	fd, err := os.Open(l.mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := unix.Syncfs(int(fd.Fd())); err != nil { // writes the metadata in place, keeps the log
		t.Fatal(err)
	}
	// Free blocks and inodes, then reuse them: on disk, old inodes still point where new data now lives.
	for _, n := range names("old", 40)[:30] {
		if err := os.Remove(filepath.Join(l.mnt, "a", n)); err != nil {
			t.Fatal(err)
		}
	}
	l.fsyncDir("a")
	l.writeSynced("a", names("new", 30), 4)
	l.writeSynced("b", names("deep", 10), 1)
	l.fsyncDir(".")
	partly := l.snapshot()
	unix.Sync()
	synced := l.snapshot()
	for name, snap := range map[string]string{"partly-checkpointed": partly, "after-sync": synced} {
		t.Run(name, func(t *testing.T) { judge(t, snap, 50) })
	}
}

// TestJournalReplayWrapped writes fsync'd transactions through a 1024-block journal until a
// snapshot's live log runs past the journal's end and on from its start, then judges that snapshot.
func TestJournalReplayWrapped(t *testing.T) {
	t.Parallel()
	l := mountLive(t, "64M", []string{"-J", "size=4"}, "")
	for i := range 40 {
		l.writeSynced(fmt.Sprintf("w%02d", i), names(fmt.Sprintf("w%02d-", i), 10), 1)
		snap := l.snapshot()
		if j, res := scanOf(t, snap); res.wrapped {
			t.Logf("wrapped after %d batches: %d transactions from block %d of [%d, %d)", i+1, res.transactions, j.start, j.first, j.last)
			judge(t, snap, 10*(i+1))
			return
		}
		os.Remove(snap)
	}
	t.Fatal("no snapshot caught the log wrapping around")
}

// scanOf scans the journal of a snapshot, for tests that look at the replay itself.
func scanOf(t *testing.T, img string) (*journal, *replayResult) {
	t.Helper()
	raw := openSnapshot(t, img, Options{NoReplay: true})
	in, err := raw.inode(8)
	if err != nil {
		t.Fatal(err)
	}
	d, err := raw.dataOf(in)
	if err != nil {
		t.Fatal(err)
	}
	j, err := parseJournal(d, in.st.Size, raw.sb.blockSize)
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.replay(raw.volumeBlocks())
	if err != nil {
		t.Fatal(err)
	}
	return j, res
}

// TestJournalFastCommitReported: fsyncs on a fast_commit volume go to the fast-commit area, which is
// not replayed: the state must say dirty and why.
func TestJournalFastCommitReported(t *testing.T) {
	t.Parallel()
	l := mountLive(t, "32M", []string{"-O", "fast_commit"}, "")
	l.writeSynced(".", []string{"base"}, 1)
	fd, err := os.Open(l.mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := unix.Syncfs(int(fd.Fd())); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(l.mnt, "base"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(content("base", 256))
	if err := f.Sync(); err != nil { // a fast commit: an inode and a range
		t.Fatal(err)
	}
	f.Close()
	snap := l.snapshot()
	v := openSnapshot(t, snap, Options{})
	st := v.VolumeState()
	if st.State != fsys.StateDirty || !strings.Contains(st.Detail, "fast commit") {
		t.Errorf("state %+v, want dirty naming fast commits", st)
	}
}
