package ext4

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutCousin re-points fanB of one level at the next level's fanA (a directory whose ".." names
// the fanA beside fanB): that entry is a second link, so the level lists fanA only and a lookup through
// fanB is refused, while every other level lists both.
func TestFanOutCousin(t *testing.T) {
	raw := hostile.FanImage(t, "ext4")
	f, err := OpenWith(bytes.NewReader(raw), int64(len(raw)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fanA, fanB []uint32
	ino := uint32(rootIno)
	for level := 0; level < 16; level++ {
		in, err := f.inode(ino)
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.directory(in)
		if err != nil {
			t.Fatal(err)
		}
		a, errA := d.lookup("fanA")
		b, errB := d.lookup("fanB")
		if errA != nil || errB != nil {
			t.Fatalf("level %d: fanA %v, fanB %v", level, errA, errB)
		}
		fanA, fanB = append(fanA, a.ino), append(fanB, b.ino)
		ino = a.ino
	}
	const level = 5
	// The entry: inode (4 bytes), record length (2), name length 4, type 2 (directory), "fanB".
	patched := bytes.Clone(raw)
	found := 0
	for p := 0; ; {
		i := bytes.Index(raw[p:], []byte("\x04\x02fanB"))
		if i < 0 {
			break
		}
		at := p + i
		if at >= 6 && binary.LittleEndian.Uint32(raw[at-6:]) == fanB[level] {
			binary.LittleEndian.PutUint32(patched[at-6:], fanA[level+1])
			found++
		}
		p = at + 1
	}
	if found != 1 {
		t.Fatalf("found %d entries naming fanB's inode %d", found, fanB[level])
	}
	g, err := Open(bytes.NewReader(patched), int64(len(patched)))
	if err != nil {
		t.Fatal(err)
	}
	hostile.CheckFanLevels(t, g, level)
	h, err := Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	hostile.CheckFanLevels(t, h, -1)
}
