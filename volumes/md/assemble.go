package md

import (
	"fmt"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// Member is one device of the set that carries an md superblock.
type Member struct {
	SB  *Superblock
	Dev layout.Dev // the whole member device (the superblock's offsets are relative to it)
}

// Array is an array assembled from the members that share its UUID.
type Array struct {
	SB       *Superblock // the freshest member's superblock: geometry, name, UUID
	Geometry Geometry
	// Roles maps each slot of the array to the index of its member in the input, -1 when missing.
	Roles   []int
	Missing []int // slots without a member
	Unused  []int // input indexes not used: spares, faulty, stale or inconsistent members
	Size    int64 // bytes (0 when the geometry itself is unusable)
	Dev     layout.Dev
	Err     error // why the array cannot be read; Dev is nil then
}

// Degraded reports whether the array reads with members missing.
func (a *Array) Degraded() bool { return a.Err == nil && len(a.Missing) > 0 }

// Assemble groups members by array UUID and builds each array from its freshest members. Problems
// lists what was set aside and why (stale, conflicting or inconsistent members).
func Assemble(members []Member) ([]*Array, []string) {
	var order [][16]byte
	groups := map[[16]byte][]int{}
	for i, m := range members {
		if _, ok := groups[m.SB.UUID]; !ok {
			order = append(order, m.SB.UUID)
		}
		groups[m.SB.UUID] = append(groups[m.SB.UUID], i)
	}
	var arrays []*Array
	var problems []string
	for _, u := range order {
		a, ps := assemble(members, groups[u])
		arrays = append(arrays, a)
		problems = append(problems, ps...)
	}
	return arrays, problems
}

func assemble(members []Member, idx []int) (*Array, []string) {
	var problems []string
	ref := members[idx[0]].SB
	for _, i := range idx {
		if members[i].SB.Events > ref.Events {
			ref = members[i].SB
		}
	}
	a := &Array{SB: ref, Geometry: Geometry{Level: ref.Level, Layout: ref.Layout, Chunk: ref.Chunk, Members: ref.RaidDisks, DevSize: ref.DevSize}}
	a.Roles = make([]int, ref.RaidDisks)
	for r := range a.Roles {
		a.Roles[r] = -1
	}
	name := ref.UUIDString()
	for _, i := range idx {
		sb := members[i].SB
		switch {
		case sb.Level != ref.Level || sb.RaidDisks != ref.RaidDisks || sb.Chunk != ref.Chunk || sb.Layout != ref.Layout:
			problems = append(problems, fmt.Sprintf("md %s: member %d disagrees on the geometry (%s, %d disks); set aside", name, i, LevelName(sb.Level), sb.RaidDisks))
		case sb.Events < ref.Events:
			problems = append(problems, fmt.Sprintf("md %s: member %d is stale (events %d, the array is at %d); set aside", name, i, sb.Events, ref.Events))
		case sb.Role < 0:
		case a.Roles[sb.Role] >= 0:
			problems = append(problems, fmt.Sprintf("md %s: members %d and %d both claim slot %d; the second is set aside", name, a.Roles[sb.Role], i, sb.Role))
		default:
			a.Roles[sb.Role] = i
			continue
		}
		a.Unused = append(a.Unused, i)
	}
	if ref.ReshapeNew {
		a.Err = fmt.Errorf("%w: a reshape is under way", ErrUnsupported)
		return a, problems
	}
	devs := make([]layout.Dev, len(a.Roles))
	data := make([]int64, len(a.Roles))
	for r, i := range a.Roles {
		if i < 0 {
			a.Missing = append(a.Missing, r)
			continue
		}
		sb := members[i].SB
		d, err := layout.Slice(members[i].Dev, sb.DataOffset, sb.DataSize)
		if err != nil {
			a.Err = fmt.Errorf("member %d: data area: %w", i, err)
			return a, problems
		}
		devs[r], data[r] = d, sb.DataSize
	}
	if len(a.Missing) == 0 || a.Geometry.Level > 1 {
		a.Size, _ = a.Geometry.ArraySize(data)
	}
	dev, err := a.Geometry.Build(devs)
	if err != nil {
		if len(a.Missing) > 0 {
			err = fmt.Errorf("%w (missing slots %s)", err, slots(a.Missing))
		}
		a.Err = err
		return a, problems
	}
	a.Dev, a.Size = dev, dev.Size()
	return a, problems
}

// slots formats slot numbers as "1, 3".
func slots(s []int) string {
	var out []string
	for _, r := range s {
		out = append(out, fmt.Sprint(r))
	}
	return strings.Join(out, ", ")
}
