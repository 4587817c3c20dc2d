package xfs

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"golang.org/x/sys/unix"
)

// logItem is an intent or done item's format region as the kernel logs it: type, size, then (intent)
// extent count or (done) padding, then the id at byte 8.
func logItem(typ uint16, id uint64) *item {
	r := make([]byte, 16+32)
	binary.LittleEndian.PutUint16(r, typ)
	binary.LittleEndian.PutUint16(r[2:], 1)
	binary.LittleEndian.PutUint32(r[4:], 1)
	binary.LittleEndian.PutUint64(r[8:], id)
	return &item{regions: [][]byte{r}}
}

// An intent stays unfinished until a done item of its kind names its id, in the same transaction or
// a later one; done items of another kind or id release nothing.
func TestUnfinishedIntents(t *testing.T) {
	trans := []*transaction{
		{items: []*item{logItem(0x1244, 1), logItem(0x1244, 2), logItem(0x1246, 7), logItem(0x1245, 1)}},
		{items: []*item{logItem(0x1247, 2), logItem(0x1249, 7), logItem(0x1248, 9), logItem(0x1244, 3)}},
		{items: []*item{logItem(0x1245, 3), logItem(0x1240, 5), {regions: [][]byte{{0x44, 0x12}}}}},
	}
	got := unfinishedIntents(trans)
	want := []uint16{0x1244, 0x1246, 0x1248} // in log order: BUI 2, ATTRI 7, XMI 9
	if len(got) != len(want) {
		t.Fatalf("unfinished %v, want %v", got, want)
	}
	for i, typ := range want {
		if got[i].typ != typ {
			t.Errorf("unfinished intent %d is of type %#x, want %#x", i, got[i].typ, typ)
		}
	}
	if d := describeIntents(got); !strings.Contains(d, "1 bmap") || !strings.Contains(d, "1 extended") || !strings.Contains(d, "1 file mapping") {
		t.Errorf("description %q", d)
	}
	if d := describeIntents(got, liBUI); strings.Contains(d, "bmap") || describeIntents(nil) != "" {
		t.Errorf("description without BUIs %q", d)
	}
}

// TestLogReplayReflink snapshots a live reflink and reverse-mapping volume in the middle of reflink
// copies, punched holes in shared extents and overwrites of shared blocks (which log bmap, refcount and
// rmap updates, and their intents when a checkpoint falls between an intent and its done item), and
// compares our replay with the kernel's, entry by entry.
func TestLogReplayReflink(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("fallocate"); err != nil {
		t.Skip("fallocate not installed")
	}
	img, mnt := testfix.MountLive(t, 320<<20, []string{"mkfs.xfs", "-q", "-f", "-m", "reflink=1,rmapbt=1"}, "")
	src := filepath.Join(mnt, "src")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	for i := range 64 { // every other block: 64 extents
		block[0] = byte(i)
		if _, err := f.WriteAt(block, int64(i)*8192); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	unix.Sync()
	for i := range 6 {
		dst := filepath.Join(mnt, "copy"+string(rune('a'+i)))
		if out, err := exec.Command("cp", "--reflink=always", src, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp --reflink: %v: %s", err, out)
		}
		if out, err := exec.Command("fallocate", "--punch-hole", "-o", "16384", "-l", "8192", dst).CombinedOutput(); err != nil {
			t.Fatalf("fallocate: %v: %s", err, out)
		}
		g, err := os.OpenFile(dst, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		g.WriteAt([]byte("copy-on-write"), 40960)
		if err := g.Sync(); err != nil {
			t.Fatal(err)
		}
		g.Close()
	}
	d, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	d.Sync()
	d.Close()
	snap := testfix.Snapshot(t, img)
	judgeReplay(t, snap, 8) // which also wants the state "replayed", not "dirty" with unfinished intents
}
