package iso9660

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// extent is one contiguous run of a file's data.
type extent struct {
	block uint32
	size  uint32
}

// node is one entry of a directory, with everything Stat, ReadDir, ReadLink and Open need.
type node struct {
	name    string
	st      fsys.Stat
	dir     extent   // directories: where the listing lives
	extents []extent // regular files: data, in order (several for multi-extent files)
	target  string   // symlinks
	zf      *zisofs  // transparently compressed (zisofs) regular files
}

func (n *node) isDir() bool { return n.st.Mode&fsys.S_IFMT == fsys.S_IFDIR }

// listing is a parsed directory with a name index.
type listing struct {
	nodes  []*node
	byName map[string]*node
	// second names the records left out because an earlier one (in sorted order) names the same
	// directory extent: a directory has one name, and a re-pointed sibling would double a walk at
	// every level. Nil when there is none.
	second map[string]bool
}

// dirCache keeps parsed listings keyed by their first block, bounded by the number of entries.
type dirCache struct {
	mu      sync.Mutex
	max     int
	total   int
	byBlock map[uint32]*listing
	arrival []uint32
}

func (c *dirCache) get(block uint32) *listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byBlock[block]
}

func (c *dirCache) put(block uint32, l *listing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byBlock[block]; ok || len(l.nodes) > c.max {
		return
	}
	// Each listing costs one more than its entries, so empty directories also count against the bound.
	c.byBlock[block] = l
	c.arrival = append(c.arrival, block)
	c.total += len(l.nodes) + 1
	for c.total > c.max {
		old := c.arrival[0]
		c.arrival = c.arrival[1:]
		c.total -= len(c.byBlock[old].nodes) + 1
		delete(c.byBlock, old)
	}
}

func (c *dirCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byBlock, c.arrival, c.total = map[uint32]*listing{}, nil, 0
}

// list returns the parsed entries of the directory whose listing is at d.
func (f *FS) list(d extent) (*listing, error) {
	if l := f.dirs.get(d.block); l != nil {
		return l, nil
	}
	nodes, err := f.parseDir(d)
	if err != nil {
		return nil, err
	}
	// io/fs lists names sorted; on disk, records are sorted by ISO identifier, not by Rock Ridge name.
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].name < nodes[j].name })
	nodes, dropped := dropSecondLinks(nodes)
	l := &listing{nodes: nodes, byName: make(map[string]*node, len(nodes))}
	for _, n := range nodes {
		if _, dup := l.byName[n.name]; !dup {
			l.byName[n.name] = n
		}
	}
	for _, n := range dropped {
		if _, kept := l.byName[n.name]; !kept {
			if l.second == nil {
				l.second = map[string]bool{}
			}
			l.second[n.name] = true
		}
	}
	f.dirs.put(d.block, l)
	return l, nil
}

// dropSecondLinks splits off every directory record whose extent an earlier directory record of the
// listing already names (two directories never share an extent: each holds its own "." and "..").
func dropSecondLinks(nodes []*node) (kept, dropped []*node) {
	drop := fsys.SecondDirNames(nodes, func(n *node) uint32 { return n.dir.block }, (*node).isDir)
	kept = nodes[:0:0]
	for i, n := range nodes {
		if drop[i] {
			slog.Debug("iso9660: second name of a directory left out", "name", n.name, "block", n.dir.block)
			dropped = append(dropped, n)
			continue
		}
		kept = append(kept, n)
	}
	return kept, dropped
}

// readExtent reads a directory's listing, checking it lies inside the image.
func (f *FS) readExtent(d extent) ([]byte, error) {
	start := int64(d.block) * sectorSize
	if start+int64(d.size) > f.size {
		return nil, fmt.Errorf("%w: directory at block %d (%d bytes) runs past the image end", ErrCorrupt, d.block, d.size)
	}
	buf := make([]byte, d.size)
	if _, err := f.r.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("iso9660: reading directory at block %d: %w", d.block, err)
	}
	return buf, nil
}

// parseDir decodes every record of a directory listing. Records never straddle a sector; a zero length
// byte means the rest of the sector is padding.
func (f *FS) parseDir(d extent) ([]*node, error) {
	buf, err := f.readExtent(d)
	if err != nil {
		return nil, err
	}
	var out []*node
	var pending *node // a multi-extent file still collecting extents
	for off := 0; off < len(buf); {
		if buf[off] == 0 {
			off = (off/sectorSize + 1) * sectorSize
			continue
		}
		end := min((off/sectorSize+1)*sectorSize, len(buf))
		rec, err := parseRecord(buf[off:end])
		if err != nil {
			return nil, fmt.Errorf("directory at block %d offset %d: %w", d.block, off, err)
		}
		pos := int64(d.block)*sectorSize + int64(off)
		off += int(rec.length)
		if len(rec.id) == 1 && rec.id[0] <= 1 { // "." and ".."
			continue
		}
		if pending != nil {
			if err := pending.addExtent(rec, f); err != nil {
				return nil, err
			}
			if rec.flags&flagMultiExt == 0 {
				out, pending = append(out, pending), nil
			}
			continue
		}
		if rec.flags&flagAssociated != 0 {
			continue // the kernel hides associated files by default
		}
		n, hide, err := f.makeNode(rec, pos)
		if err != nil {
			return nil, fmt.Errorf("directory at block %d offset %d: %w", d.block, off-int(rec.length), err)
		}
		if hide {
			continue
		}
		if rec.flags&flagMultiExt != 0 && !n.isDir() {
			pending = n
			continue
		}
		out = append(out, n)
	}
	if pending != nil {
		return nil, fmt.Errorf("%w: multi-extent file %q has no final extent", ErrCorrupt, pending.name)
	}
	return out, nil
}

// addExtent appends a further section of a multi-extent file.
func (n *node) addExtent(rec *record, f *FS) error {
	if int64(len(n.extents)) > f.size/sectorSize {
		return fmt.Errorf("%w: multi-extent file %q has too many sections", ErrCorrupt, n.name)
	}
	n.extents = append(n.extents, extent{block: rec.extent, size: rec.size})
	n.st.Size += int64(rec.size)
	n.st.AllocatedSize = allocated(n.st.Size)
	return nil
}

// allocated is what Linux reports as st_blocks*512 for an ISO9660 inode: the recorded data length
// rounded up to 512 bytes (Rock Ridge does not change it).
func allocated(n int64) int64 { return (n + 511) &^ 511 }
