package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// logprintState asks xfs_logprint -t whether an image's log is clean.
func logprintState(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command("xfs_logprint", "-t", img).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_logprint: %v: %s", err, out)
	}
	switch s := string(out); {
	case strings.Contains(s, "<CLEAN>") || strings.Contains(s, "totally zeroed log"):
		return fsys.StateClean
	case strings.Contains(s, "<DIRTY>"):
		return fsys.StateDirty
	}
	t.Fatalf("xfs_logprint printed no state: %s", out)
	return ""
}

// writeSynced writes files into dir of a mounted volume, fsyncing each and then the directory.
func writeSynced(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%03d", i)))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "file %d\n", i)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestLogState snapshots live XFS volumes (512-byte and 4 KiB log sectors) with fsync'd files in their
// log, and again after unmounting: our state must agree with xfs_logprint's every time.
func TestLogState(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("xfs_logprint"); err != nil {
		t.Skip("xfs_logprint not installed")
	}
	for _, c := range []struct {
		name string
		mkfs []string
	}{
		{"v5", nil},
		{"v5-4k-log-sectors", []string{"-s", "size=4096"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img, mnt := testfix.MountLive(t, 300<<20, append([]string{"mkfs.xfs", "-q", "-f"}, c.mkfs...), "")
			writeSynced(t, filepath.Join(mnt, "d"), 50)
			dirty := testfix.Snapshot(t, img)
			testfix.Unmount(t, mnt)
			for _, s := range []struct{ img, want string }{{dirty, fsys.StateDirty}, {img, fsys.StateClean}} {
				if got := logprintState(t, s.img); got != s.want {
					t.Fatalf("xfs_logprint says %s, the test meant %s", got, s.want)
				}
				st := openFile(t, s.img).VolumeState()
				if st.State != s.want || (s.want == fsys.StateDirty) != strings.Contains(st.Detail, "not replayed") {
					t.Errorf("%s: state %+v, xfs_logprint says %s", filepath.Base(s.img), st, s.want)
				}
			}
		})
	}
}

// fixtureLog returns a private copy of the v4 fixture (its log holds an unmount record at BB 0) and the
// byte range of its log.
func fixtureLog(t testing.TB) (img []byte, off, n int64) {
	t.Helper()
	img = gunzipFixture(t, "v4.img.gz")
	sb, err := parseSuperblock(img[:512])
	if err != nil {
		t.Fatal(err)
	}
	off, err = sb.fsbToByte(sb.logStart)
	if err != nil {
		t.Fatal(err)
	}
	return img, off, int64(sb.logBlocks) << sb.blockLog
}

// TestLogDamage: a log whose cycles admit no head, or whose newest record is missing, leaves the volume
// dirty with the reason, and its tree readable.
func TestLogDamage(t *testing.T) {
	img, off, n := fixtureLog(t)
	if st := openBytes(t, img).VolumeState(); st.State != fsys.StateClean {
		t.Fatalf("the fixture's log reads %+v, xfs_logprint says clean", st)
	}
	for _, c := range []struct {
		name, want string
		edit       func(b []byte)
	}{
		{"no head", "no head can be found", func(b []byte) { be.PutUint32(b[off+n-bbSize:], 7) }},
		{"no record header", "no log record header", func(b []byte) { be.PutUint32(b[off:], 1) }},
		{"record not ending at the head", "needs recovery", func(b []byte) { be.PutUint32(b[off+12:], 3*bbSize) }},
		{"not an unmount record", "needs recovery", func(b []byte) { b[off+bbSize+9] = 0x2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), img...)
			c.edit(b)
			v := openBytes(t, b)
			if st := v.VolumeState(); st.State != fsys.StateDirty || !strings.Contains(st.Detail, c.want) {
				t.Errorf("state %+v, want dirty naming %q", st, c.want)
			}
			if _, err := v.ReadDir("."); err != nil {
				t.Error(err)
			}
		})
	}
}

func openBytes(t testing.TB, b []byte) *FS {
	t.Helper()
	f, err := open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// FuzzLog finds the head of a log (the input, in 512-byte blocks) and checks its newest record: no
// panic, no hang. Seeds: the fixture's clean log and a copy whose record does not end at the head.
func FuzzLog(f *testing.F) {
	img, off, _ := fixtureLog(f)
	f.Add(append([]byte(nil), img[off:off+8*bbSize]...))
	torn := append([]byte(nil), img[off:off+8*bbSize]...)
	be.PutUint32(torn[12:], 3*bbSize)
	f.Add(torn)
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &xlog{r: bytes.NewReader(b), bbs: int64(len(b)) / bbSize}
		if l.bbs == 0 {
			return
		}
		head, err := l.findHead()
		if err != nil {
			return
		}
		if head < 0 || head >= l.bbs {
			t.Fatalf("head %d outside a %d-block log", head, l.bbs)
		}
		_, _ = l.clean(head)
	})
}

// openReplayed opens an image file with the log replayed.
func openReplayed(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return testfix.OpenImage(t, img, 0, func(r io.ReaderAt, n int64) (*FS, error) { return OpenWith(r, n, opt) })
}

// judgeReplay compares our replay of snap with the kernel's replay of a writable copy, checks the
// on-disk state lacked something (the test is not vacuous when notOnDisk names a directory that only
// the log holds) and that the snapshot file kept its bytes and times.
func judgeReplay(t *testing.T, snap string, wantEntries int) *FS {
	t.Helper()
	if got := logprintState(t, snap); got != fsys.StateDirty {
		t.Fatalf("xfs_logprint says the snapshot's log is %s", got)
	}
	before := testfix.SourceID(t, snap)
	raw := openReplayed(t, snap, Options{NoReplay: true})
	if st := raw.VolumeState(); st.State != fsys.StateDirty || !strings.Contains(st.Detail, "no-replay") {
		t.Errorf("no-replay state %+v", st)
	}
	ours := openReplayed(t, snap, Options{})
	if st := ours.VolumeState(); st.State != fsys.StateReplayed {
		t.Fatalf("state %+v", st)
	}
	judge := treecmp.MatchesKernelReplay(t, ours, snap, ",nouuid", before)
	n := 0
	filepath.WalkDir(judge, func(string, os.DirEntry, error) error { n++; return nil })
	if n < wantEntries {
		t.Errorf("the kernel's replay shows %d entries, want at least %d", n, wantEntries)
	}
	return ours
}

// TestLogReplayMatchesKernel snapshots live XFS volumes with fsync'd files in the log (512-byte and
// 4 KiB log sectors) and compares our replay with the kernel's, entry by entry.
func TestLogReplayMatchesKernel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		mkfs []string
	}{
		{"v5", nil},
		{"v5-4k-log-sectors", []string{"-s", "size=4096"}},
		{"v5-1k-blocks", []string{"-b", "size=1024"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img, mnt := testfix.MountLive(t, 300<<20, append([]string{"mkfs.xfs", "-q", "-f"}, c.mkfs...), "")
			writeSynced(t, filepath.Join(mnt, "d"), 50)
			writeSynced(t, filepath.Join(mnt, "d", "sub"), 5)
			snap := testfix.Snapshot(t, img)
			raw := openReplayed(t, snap, Options{NoReplay: true})
			if ents, err := raw.ReadDir("d"); err == nil && len(ents) == 51 {
				t.Error("the on-disk state already shows every file: nothing was left to replay")
			}
			judgeReplay(t, snap, 57)
		})
	}
}

// TestLogReplayCheckpointMoments snapshots after a sync of the filesystem (metadata written in
// place, the log kept), after deleting files and writing others over their inodes and blocks, and
// after a global sync.
func TestLogReplayCheckpointMoments(t *testing.T) {
	t.Parallel()
	img, mnt := testfix.MountLive(t, 300<<20, []string{"mkfs.xfs", "-q", "-f"}, "")
	writeSynced(t, filepath.Join(mnt, "a"), 40)
	fd, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := unix.Syncfs(int(fd.Fd())); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := os.Remove(filepath.Join(mnt, "a", fmt.Sprintf("f%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	writeSynced(t, filepath.Join(mnt, "b"), 30)
	partly := testfix.Snapshot(t, img)
	unix.Sync()
	synced := testfix.Snapshot(t, img)
	for name, snap := range map[string]string{"partly-checkpointed": partly, "after-sync": synced} {
		t.Run(name, func(t *testing.T) { judgeReplay(t, snap, 40) })
	}
}

// TestLogReplayWrapped writes fsync'd files through the smallest log mkfs.xfs allows until a
// snapshot's live log runs past the log's end and on from its start, then judges that snapshot.
func TestLogReplayWrapped(t *testing.T) {
	// mkfs.xfs refuses logs under 64 MiB unless it runs under fstests, as these variables tell it.
	t.Setenv("TEST_DIR", t.TempDir())
	t.Setenv("TEST_DEV", "none")
	t.Setenv("QA_CHECK_FS", "none")
	img, mnt := testfix.MountLive(t, 300<<20, []string{"mkfs.xfs", "-q", "-f", "-l", "size=1368b"}, "")
	for i := range 80 {
		writeSynced(t, filepath.Join(mnt, fmt.Sprintf("w%03d", i)), 40)
		snap := testfix.Snapshot(t, img)
		f := openFile(t, snap)
		if f.log != nil {
			rblk, err := f.log.lastRecord(f.head)
			if err != nil {
				t.Fatal(err)
			}
			hdr := make([]byte, bbSize)
			if err := f.log.readBB(hdr, rblk); err != nil {
				t.Fatal(err)
			}
			if tail := int64(uint32(be.Uint64(hdr[24:]))); tail > f.head {
				t.Logf("wrapped after %d batches: tail %d, head %d of %d blocks", i+1, tail, f.head, f.log.bbs)
				judgeReplay(t, snap, 40*(i+1))
				return
			}
		}
		os.Remove(snap)
	}
	t.Fatal("no snapshot caught the log wrapping around")
}

// dirtyLog makes a snapshot with a few fsync'd files in its log and returns it with its log, head and
// tail.
func dirtyLog(t *testing.T, files int) (snap string, l *xlog, head, tail int64) {
	t.Helper()
	img, mnt := testfix.MountLive(t, 300<<20, []string{"mkfs.xfs", "-q", "-f"}, "")
	writeSynced(t, filepath.Join(mnt, "d"), files)
	snap = testfix.Snapshot(t, img)
	f := openFile(t, snap)
	if f.log == nil {
		t.Fatalf("the snapshot's log is %+v", f.state)
	}
	rblk, err := f.log.lastRecord(f.head)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, bbSize)
	if err := f.log.readBB(hdr, rblk); err != nil {
		t.Fatal(err)
	}
	return snap, f.log, f.head, int64(uint32(be.Uint64(hdr[24:])))
}

// TestLogReplayTornRecord damages the newest record of a real log in place: its CRC fails, so it is a
// torn write that ends the log, for the kernel and for us, and both show the same tree.
func TestLogReplayTornRecord(t *testing.T) {
	t.Parallel()
	snap, l, head, _ := dirtyLog(t, 20)
	last, err := l.lastRecord(head)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(snap, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	off := l.off + ((last+1)%l.bbs)*bbSize + 100 // inside the record's data
	fh.ReadAt(b, off)
	b[0] ^= 0xFF
	fh.WriteAt(b, off)
	fh.Close()
	ours := openReplayed(t, snap, Options{})
	if st := ours.VolumeState(); st.State != fsys.StateReplayed {
		t.Fatalf("state %+v", st)
	}
	judge := testfix.KernelReplay(t, snap, ",nouuid")
	for _, d := range treecmp.Compare(ours, judge, treecmp.Options{CompareIno: true, Ignore: treecmp.Atime}) {
		t.Error(d)
	}
}

// compactLog copies the live part of a log, tail to head, into a log of its own that starts at BB 0,
// with the tails its record headers name moved and their CRCs made good again, then 8 zeroed BBs:
// a small valid dirty log for the fuzz target.
func compactLog(t *testing.T, l *xlog, head, tail int64) []byte {
	t.Helper()
	n := (head - tail + l.bbs) % l.bbs
	out := make([]byte, (n+8)*bbSize)
	for i := int64(0); i < n; i++ {
		if err := l.readBB(out[i*bbSize:(i+1)*bbSize], (tail+i)%l.bbs); err != nil {
			t.Fatal(err)
		}
	}
	c := &xlog{r: bytes.NewReader(out), bbs: int64(len(out)) / bbSize}
	for blk := int64(0); blk < n; {
		hdr := out[blk*bbSize:]
		be.PutUint64(hdr[24:], be.Uint64(hdr[24:])&^0xFFFFFFFF)
		rec, next, err := c.record(blk, false)
		if err != nil {
			t.Fatal(err)
		}
		dataBBs := (int64(len(rec.data)) + bbSize - 1) / bbSize
		stamped := append([]byte(nil), out[(next-dataBBs)*bbSize:next*bbSize]...)
		binary.LittleEndian.PutUint32(hdr[32:], recordCRC(hdr, nil, stamped[:len(rec.data)], 1, 328))
		blk = next
	}
	return out
}

// FuzzLogRecovery finds the head of a log (the input) and replays it over the v5 fixture, then
// finishes the bmap intents it left: no panic, no hang, bounded memory. Seeds in
// testdata/fuzz/FuzzLogRecovery are compact real logs (LOG_SEEDS=1 go test -run TestLogSeeds
// ./volumes/fsys/xfs rewrites them); the ones added here hold bmap intents for the fixture's files,
// valid and hostile.
func FuzzLogRecovery(f *testing.F) {
	img := sharedFixture(f, "v5.img.gz")
	v, err := open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	frag, err := v.walk("fragmented")
	if err != nil {
		f.Fatal(err)
	}
	ex, err := v.forkExtents(frag, false)
	if err != nil {
		f.Fatal(err)
	}
	e := ex[1]
	f.Add(compactBUILog(v.sb, buiRegion(1, frag.ino, e.block, e.off, 1, bmapUnmap), buiRegion(2, frag.ino, e.block, e.off, 1, bmapMap),
		buiRegion(3, frag.ino, e.block, e.off+1, 1, bmapMap|bmapUnwritten), budRegion(3)))
	f.Add(compactBUILog(v.sb, buiRegion(1, frag.ino, e.block, 1<<40, 1<<21-1, bmapUnmap|bmapAttrFork)))
	f.Add(compactBUILog(v.sb, buiRegion(1, 1<<60, uint64(v.sb.agBlocks)-1, 0, 1<<31, bmapMap|bmapRealtime)))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &xlog{r: bytes.NewReader(b), bbs: int64(len(b)) / bbSize}
		if l.bbs < 2 {
			return
		}
		head, err := l.findHead()
		if err != nil {
			return
		}
		if ok, err := l.clean(head); ok || err != nil {
			return
		}
		v, err := open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		view, _, err := v.recoverLog(l, head)
		if err != nil || view == nil {
			return
		}
		if g, err := open(view, int64(len(img))); err == nil {
			_, _ = g.redoBmaps(v.intents)
		}
	})
}

func TestLogSeeds(t *testing.T) {
	if os.Getenv("LOG_SEEDS") == "" {
		t.Skip("set LOG_SEEDS=1 to rewrite testdata/fuzz/FuzzLogRecovery")
	}
	_, l, head, tail := dirtyLog(t, 2)
	b := compactLog(t, l, head, tail)
	c := &xlog{r: bytes.NewReader(b), bbs: int64(len(b)) / bbSize}
	h, err := c.findHead()
	if err != nil {
		t.Fatal(err)
	}
	img := sharedFixture(t, "v5.img.gz")
	v, err := open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := v.recoverLog(c, h)
	t.Logf("compact log of %d blocks, head %d: %d transactions (%v)", c.bbs, h, n, err)
	dir := filepath.Join("testdata", "fuzz", "FuzzLogRecovery")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dirty-v5"), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
		t.Fatal(err)
	}
}
