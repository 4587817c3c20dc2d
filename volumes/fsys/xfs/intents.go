package xfs

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Intent and done log items that change the file tree. The kernel finishes an intent no done item
// released (xlog_recover_process_intents) after replaying the log. We do not redo them yet, so a
// replay that leaves one unfinished says so in the volume's state instead of showing a tree that
// silently lacks the change. Every one of these formats keeps its type at 0 and, in an intent its id,
// in a done item the id of the intent it releases, at byte 8 (host order: little-endian).
var treeIntents = map[uint16]struct {
	done uint16
	what string
}{
	0x1244: {0x1245, "bmap intents (BUI: extents mapped into or out of a file)"},
	0x1246: {0x1247, "extended attribute intents (ATTRI)"},
	0x1248: {0x1249, "file mapping exchange intents (XMI)"},
}

// unfinishedIntents counts, by kind, the intents of the committed transactions that no later done item
// released, in log order as the kernel's recovery sees them.
func unfinishedIntents(trans []*transaction) map[string]int {
	type key struct {
		typ uint16
		id  uint64
	}
	open := map[key]bool{}
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
				open[key{typ, id}] = true
			} else if in, ok := doneOf[typ]; ok {
				delete(open, key{in, id})
			}
		}
	}
	out := map[string]int{}
	for k := range open {
		out[treeIntents[k.typ].what]++
	}
	return out
}

// describeIntents says which unfinished intents a replay left, "" when none.
func describeIntents(n map[string]int) string {
	var parts []string
	for what, c := range n {
		parts = append(parts, fmt.Sprintf("%d %s", c, what))
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
