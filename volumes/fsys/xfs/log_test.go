package xfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
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
