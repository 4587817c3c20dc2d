package xfs

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Intent and done log items that change the file tree. The kernel finishes an intent no done item
// released (xlog_recover_process_intents) after replaying the log. Bmap intents (BUI) are finished
// here too (redo.go); extended attribute (ATTRI) and file mapping exchange (XMI) intents are not yet,
// so a replay that leaves one says so in the volume's state instead of showing a tree that silently
// lacks the change. The intents that only concern free space, reverse mappings and reference counts
// (EFI, RUI, CUI) are not tracked at all: the tree never reads what they finish. Every one of these
// formats keeps its type at 0 and, in an intent its id, in a done item the id of the intent it
// releases, at byte 8 (host order: little-endian).
const (
	liBUI   = 0x1244
	liATTRI = 0x1246
	liXMI   = 0x1248
)

var treeIntents = map[uint16]struct {
	done uint16
	what string
}{
	liBUI:   {0x1245, "bmap intents (BUI: extents mapped into or out of a file)"},
	liATTRI: {0x1247, "extended attribute intents (ATTRI)"},
	liXMI:   {0x1249, "file mapping exchange intents (XMI)"},
}

// openIntent is an intent item of a committed transaction that no later done item released.
type openIntent struct {
	typ    uint16
	region []byte // its format region
}

// unfinishedIntents returns the intents of the committed transactions that no later done item
// released, in log order, the order in which the kernel's recovery finishes them.
func unfinishedIntents(trans []*transaction) []openIntent {
	type key struct {
		typ uint16
		id  uint64
	}
	var all []openIntent
	open := map[key]int{} // index in all
	doneOf := map[uint16]uint16{}
	for typ, in := range treeIntents {
		doneOf[in.done] = typ
	}
	for _, t := range trans {
		for _, it := range t.items {
			if len(it.regions) == 0 || len(it.regions[0]) < 16 {
				continue
			}
			r := it.regions[0]
			typ, id := binary.LittleEndian.Uint16(r), binary.LittleEndian.Uint64(r[8:])
			if _, ok := treeIntents[typ]; ok {
				open[key{typ, id}] = len(all)
				all = append(all, openIntent{typ: typ, region: r})
			} else if in, ok := doneOf[typ]; ok {
				if i, ok := open[key{in, id}]; ok {
					all[i].region = nil
					delete(open, key{in, id})
				}
			}
		}
	}
	out := all[:0]
	for _, o := range all {
		if o.region != nil {
			out = append(out, o)
		}
	}
	return out
}

// describeIntents says which unfinished intents, other than those of the kinds in skip, a replay
// left: "" when none.
func describeIntents(open []openIntent, skip ...uint16) string {
	n := map[string]int{}
outer:
	for _, o := range open {
		for _, s := range skip {
			if o.typ == s {
				continue outer
			}
		}
		n[treeIntents[o.typ].what]++
	}
	var parts []string
	for what, c := range n {
		parts = append(parts, fmt.Sprintf("%d %s", c, what))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
