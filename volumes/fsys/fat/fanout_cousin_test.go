package fat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// TestFanOutCousin re-points fanB of one level at the next level's fanA (a directory whose ".." names
// its own parent, the fanA beside fanB): that entry is a second link, so the level lists fanA only and
// a lookup through fanB is refused, while every other level lists both.
func TestFanOutCousin(t *testing.T) {
	raw := hostile.FanImage(t, "fat")
	opened, err := Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	f := opened.(*FS)
	var fanA, fanB []dirent
	cluster := f.rootCluster()
	for level := 0; level < 16; level++ {
		d, err := f.dir(cluster)
		if err != nil {
			t.Fatal(err)
		}
		a, okA := d.byName["fanA"]
		b, okB := d.byName["fanB"]
		if !okA || !okB {
			t.Fatalf("level %d: no fanA/fanB", level)
		}
		fanA, fanB = append(fanA, d.ents[a]), append(fanB, d.ents[b])
		cluster = d.ents[a].cluster
	}
	const level = 5
	patched := bytes.Clone(raw)
	c, pos := fanA[level+1].cluster, fanB[level].pos
	binary.LittleEndian.PutUint16(patched[pos+20:], uint16(c>>16))
	binary.LittleEndian.PutUint16(patched[pos+26:], uint16(c))
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
