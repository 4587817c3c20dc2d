package md

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/mdfix"
)

// FuzzSuperblock treats the input as one member: Read and Assemble must give errors, never panic, hang
// or allocate from a hostile count; an assembled array must read inside its bounds.
func FuzzSuperblock(f *testing.F) {
	for _, shape := range []mdfix.Array{shapes[0], shapes[2], shapes[9], shapes[12]} {
		shape.Chunk, shape.DevSize, shape.Events = 4096, 4*4096, 1
		shape.DataStart = 8192
		members, err := shape.Build(make([]byte, shape.ArraySize()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(members[0])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := Read(dev(b), int64(len(b)))
		if err != nil {
			return
		}
		arrays, _ := Assemble([]Member{{SB: sb, Dev: dev(b)}, {SB: sb, Dev: dev(b)}})
		for _, a := range arrays {
			if a.Dev != nil && a.Dev.Size() > 0 {
				buf := make([]byte, 4096)
				a.Dev.ReadAt(buf, 0)
				a.Dev.ReadAt(buf, a.Dev.Size()-1)
			}
		}
	})
}

// TestHostileSuperblocks damages a good member field by field: each damage is refused with an error
// that names it, or (for geometry no array has) leaves the array unassembled with a reason.
func TestHostileSuperblocks(t *testing.T) {
	shape := mdfix.Array{Version: "1.2", Level: 5, Layout: 2, Members: 3, Chunk: 4096, DevSize: 8 * 4096, Events: 1, DataStart: 8192}
	good, err := shape.Build(make([]byte, shape.ArraySize()))
	if err != nil {
		t.Fatal(err)
	}
	resum := func(b []byte) {
		sb := b[4096:]
		binary.LittleEndian.PutUint32(sb[216:], Checksum1(sb, int(binary.LittleEndian.Uint32(sb[220:]))))
	}
	cases := []struct {
		name   string
		damage func(sb []byte)
		resum  bool
		want   string // in Read's error, or in the array's Err
	}{
		{"checksum", func(sb []byte) { sb[100] ^= 1 }, false, "checksum"},
		{"max_dev 2^32-1", func(sb []byte) { binary.LittleEndian.PutUint32(sb[220:], 0xffffffff) }, true, "max_dev"},
		{"raid disks 2^32-1", func(sb []byte) { binary.LittleEndian.PutUint32(sb[92:], 0xffffffff) }, true, "raid disks"},
		{"raid disks 0", func(sb []byte) { binary.LittleEndian.PutUint32(sb[92:], 0) }, true, "raid disks"},
		{"data past the end", func(sb []byte) { binary.LittleEndian.PutUint64(sb[136:], 1<<40) }, true, "past"},
		{"sector count 2^63", func(sb []byte) { binary.LittleEndian.PutUint64(sb[128:], 1<<63) }, true, "2^54"},
		{"super_offset lies", func(sb []byte) { binary.LittleEndian.PutUint64(sb[144:], 0) }, true, "super_offset"},
		{"chunk 3 sectors", func(sb []byte) { binary.LittleEndian.PutUint32(sb[88:], 3) }, true, "chunk"},
		{"chunk 2^31 sectors", func(sb []byte) { binary.LittleEndian.PutUint32(sb[88:], 1<<31) }, true, "chunk"},
		{"layout 99", func(sb []byte) { binary.LittleEndian.PutUint32(sb[76:], 99) }, true, "not supported"},
		{"level 7", func(sb []byte) { binary.LittleEndian.PutUint32(sb[72:], 7) }, true, "not supported"},
		{"device size 2^50 sectors", func(sb []byte) { binary.LittleEndian.PutUint64(sb[80:], 1<<50) }, true, "array uses"},
		{"reshape", func(sb []byte) { sb[8] |= featureReshape }, true, "reshape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ms []Member
			for _, m := range good {
				b := append([]byte(nil), m...)
				c.damage(b[4096:])
				if c.resum {
					resum(b)
				}
				sb, err := Read(dev(b), int64(len(b)))
				if err != nil {
					if errors.Is(err, ErrNoSuperblock) || !strings.Contains(err.Error(), c.want) {
						t.Fatalf("error %q does not name %q", err, c.want)
					}
					return
				}
				ms = append(ms, Member{SB: sb, Dev: dev(b)})
			}
			arrays, _ := Assemble(ms)
			if len(arrays) != 1 || arrays[0].Err == nil || !strings.Contains(arrays[0].Err.Error(), c.want) {
				t.Fatalf("arrays %+v: want an error naming %q", arrays[0], c.want)
			}
		})
	}
}
