package xfs

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutCousin re-points fanB of one level at the next level's fanA (a directory whose ".." names
// the fanA beside fanB): that entry is a second link, so the level lists fanA only and a lookup through
// fanB is refused, while every other level (and the image as made) lists both.
func TestFanOutCousin(t *testing.T) {
	raw := hostile.FanImage(t, "xfs")
	opened, err := Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	f := opened.(*FS)
	var fanA, fanB []uint64
	ip, err := f.inode(f.sb.rootIno)
	if err != nil {
		t.Fatal(err)
	}
	for level := 0; level < 16; level++ {
		d, err := f.readDir(ip)
		if err != nil {
			t.Fatal(err)
		}
		a, okA := d.find("fanA")
		b, okB := d.find("fanB")
		if !okA || !okB {
			t.Fatalf("level %d: no fanA/fanB", level)
		}
		fanA, fanB = append(fanA, a.ino), append(fanB, b.ino)
		if ip, err = f.inode(a.ino); err != nil {
			t.Fatal(err)
		}
	}
	const level = 5
	if fanB[level] > 1<<32-1 || fanA[level+1] > 1<<32-1 {
		t.Fatal("the fixture's fan directories need 64-bit inode numbers")
	}
	// A shortform entry (the fan directories are small): name, file type 2, 4-byte inode number, in
	// the inode of the level's directory (v5 inodes carry their own number at 152; the log may hold
	// stale copies elsewhere). That inode then needs its checksum redone.
	want := binary.BigEndian.AppendUint32([]byte("fanB\x02"), uint32(fanB[level]))
	isz := int(f.sb.inodeSize)
	patched := bytes.Clone(raw)
	var ino []byte
	for p := 0; ; p++ {
		i := bytes.Index(raw[p:], want)
		if i < 0 {
			break
		}
		p += i
		start := p - p%isz
		if string(raw[start:start+2]) == "IN" && binary.BigEndian.Uint64(raw[start+152:]) == fanA[level-1] {
			if ino != nil {
				t.Fatalf("two inodes of directory %d name fanB", fanA[level-1])
			}
			binary.BigEndian.PutUint32(patched[p+5:], uint32(fanA[level+1]))
			ino = patched[start : start+isz]
		}
	}
	if ino == nil {
		t.Fatalf("no shortform entry naming fanB's inode %d in directory %d", fanB[level], fanA[level-1])
	}
	binary.LittleEndian.PutUint32(ino[100:], 0)
	binary.LittleEndian.PutUint32(ino[100:], crc32.Checksum(ino, castagnoli))
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
