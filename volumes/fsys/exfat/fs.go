// Package exfat reads exFAT volumes as an fsys.FS.
//
// What it shows follows the Linux exfat driver mounted with default options as root and tz=UTC: every
// directory and file has mode 0755 and uid/gid 0, the read-only attribute clears a file's write bits,
// lookups are case-insensitive through the volume's up-case table, and times are converted with their
// stored UTC offset (a timestamp without one is taken as UTC) at 10 ms resolution for mtime and
// creation time (Btime); Ctime = Mtime. A directory's Nlink is 2 plus its subdirectories (exfat-fuse
// shows 1). Bytes past a file's valid data length read as zeros. Ino is the
// volume byte offset of the entry set divided by 32 (root: 1). Entry-set checksums, the boot-region
// checksum and the up-case table checksum are verified.
package exfat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/bits"
	"strings"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// maxDirBytes is exFAT's directory size limit (256 MiB); larger directories are refused.
const maxDirBytes = 256 << 20

const maxCachedDirEntries = 1 << 17

// FS is an open exFAT volume. It is safe for concurrent use.
type FS struct {
	fsys.Plain[node] // Stat, Lstat, ReadLink, ReadDir, ListXattr, GetXattr

	g    *geometry
	sp   special // the root's bitmap, up-case table and label entries
	tab  *table
	r    io.ReaderAt
	size int64

	upcase []uint16 // nil: the table was missing or its checksum failed; simple case folding is used

	free fsys.OnceCount

	dirs *fsys.LRU[uint32, *dirData] // by first cluster, bounded by entry count
}

// Info describes the volume beyond what Usage carries.
type Info struct {
	Serial      uint32
	Label       string
	ClusterSize int64
	Clusters    uint32
	Revision    uint16
	Dirty       bool // VolumeDirty flag
	BackupBoot  bool // the main boot region failed validation; the backup was read
	UpcaseOK    bool // the up-case table was present and its checksum matched
}

// Open reads an exFAT volume of size bytes from r.
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	g, err := readBoot(r, size)
	if err != nil {
		return nil, err
	}
	if g.backupBoot {
		slog.Warn("exfat: main boot region invalid, using the backup boot region")
	}
	f := &FS{r: r, size: size, g: g, tab: newTable(r, g), dirs: fsys.NewLRU[uint32, *dirData](maxCachedDirEntries)}
	f.Plain = fsys.Plain[node]{Lookup: f.lookup, StatNode: f.stat, IsDir: node.isDir, List: f.list, NotDir: errNotDir,
		NameOf: func(n node) (string, bool) { return fsys.EntryName(n.ent, func(e *dirent) string { return e.name }) }}
	raw, _, err := f.readDirBytes(g.rootCluster, -1, false)
	if err != nil {
		return nil, fmt.Errorf("reading root directory: %w", err)
	}
	// The bitmap, up-case and label entries are found even when a file entry set in the root is
	// damaged; that damage is reported when the root is listed.
	scanSpecial(raw, &f.sp)
	if !f.sp.hasBitmap {
		return nil, fmt.Errorf("%w: root directory has no allocation bitmap entry", ErrCorrupt)
	}
	if err := f.loadUpcase(); err != nil {
		slog.Warn("exfat: up-case table unusable, matching names with Unicode simple folding", "err", err)
	}
	return f, nil
}

// Info returns the volume's boot-region facts.
func (f *FS) Info() Info {
	return Info{Serial: f.g.serial, Label: f.sp.label, ClusterSize: f.g.clusterSize, Clusters: f.g.clusters,
		Revision: f.g.revision, Dirty: f.g.flags&2 != 0, BackupBoot: f.g.backupBoot, UpcaseOK: f.upcase != nil}
}

// loadUpcase reads and verifies the up-case table; its compressed form uses 0xFFFF, n to skip n
// identity mappings.
func (f *FS) loadUpcase() error {
	if !f.sp.hasUpcase {
		return errors.New("no up-case table entry")
	}
	if f.sp.upcaseLen == 0 || f.sp.upcaseLen > 2*65536+4 || f.sp.upcaseLen%2 != 0 {
		return fmt.Errorf("%w: up-case table of %d bytes", ErrCorrupt, f.sp.upcaseLen)
	}
	raw, err := f.readData(f.sp.upcaseCluster, int64(f.sp.upcaseLen), false)
	if err != nil {
		return err
	}
	var sum uint32
	for _, b := range raw {
		sum = (sum>>1 | sum<<31) + uint32(b)
	}
	if sum != f.sp.upcaseSum {
		return fmt.Errorf("%w: up-case table checksum %#08x, computed %#08x", ErrCorrupt, f.sp.upcaseSum, sum)
	}
	up := make([]uint16, 65536)
	for i := range up {
		up[i] = uint16(i)
	}
	c := 0
	for i := 0; i+1 < len(raw) && c < 65536; i += 2 {
		v := binary.LittleEndian.Uint16(raw[i:])
		if v == 0xFFFF && i+3 < len(raw) {
			c += int(binary.LittleEndian.Uint16(raw[i+2:]))
			i += 2
			continue
		}
		up[c] = v
		c++
	}
	f.upcase = up
	return nil
}

// fold maps a name through the up-case table for comparison.
func (f *FS) fold(name string) string {
	if f.upcase == nil {
		return strings.ToUpper(name)
	}
	u := utf16.Encode([]rune(name))
	for i, c := range u {
		u[i] = f.upcase[c]
	}
	return string(utf16.Decode(u))
}

// readData reads n bytes of a cluster run or chain.
func (f *FS) readData(first uint32, n int64, contiguous bool) ([]byte, error) {
	runs, err := f.tab.clustersOf(first, (n+f.g.clusterSize-1)/f.g.clusterSize, contiguous)
	if err != nil {
		return nil, err
	}
	out, _, err := fsys.ReadRuns(f.r, runs, n, f.g.clusterSize, f.clusterOffset)
	return out, err
}

func (f *FS) clusterOffset(c uint32) int64 {
	return f.g.heapOffset + int64(c-2)*f.g.clusterSize
}

// readDirBytes loads a directory; size < 0 means the whole FAT chain (the root directory).
func (f *FS) readDirBytes(first uint32, size int64, contiguous bool) ([]byte, func(int) int64, error) {
	cs := f.g.clusterSize
	var runs []fsys.ClusterRun
	if size < 0 {
		c, err := f.tab.Walk(first, maxDirBytes/cs+1)
		if err != nil {
			return nil, nil, err
		}
		if !c.Complete && c.Clusters*cs > maxDirBytes {
			return nil, nil, fmt.Errorf("%w: directory at cluster %d exceeds 256 MiB (a looping or corrupt chain)", ErrCorrupt, first)
		}
		runs, size = c.Runs, c.Clusters*cs
	} else {
		if size > maxDirBytes || size > int64(f.g.clusters)*cs {
			return nil, nil, fmt.Errorf("%w: directory of %d bytes at cluster %d is larger than allowed", ErrCorrupt, size, first)
		}
		var err error
		if runs, err = f.tab.clustersOf(first, (size+cs-1)/cs, contiguous); err != nil {
			return nil, nil, err
		}
	}
	return fsys.ReadRuns(f.r, runs, size, cs, f.clusterOffset)
}

// dirData is a parsed directory with lookup indexes, so large directories resolve names in O(1).
type dirData struct {
	ents   []dirent
	byName map[string]int
	byKey  map[string]int // name through the up-case table
	// second marks the entries naming a directory whose first cluster an earlier entry (on disk)
	// already names: two directories never share a cluster, and a re-pointed sibling would double a
	// walk at every level. exFAT has no ".." to tell a directory's parent, so only siblings are judged.
	second map[int]bool
}

// dir returns a directory's entry sets through a bounded cache keyed by its first cluster.
func (f *FS) dir(n node) (*dirData, error) {
	first, size, contiguous := f.g.rootCluster, int64(-1), false
	if n.ent != nil {
		if !n.ent.allocated || n.ent.dataLen == 0 {
			return &dirData{}, nil
		}
		first, size, contiguous = n.ent.first, int64(n.ent.dataLen), n.ent.contiguous
	}
	if d, ok := f.dirs.Get(first); ok {
		return d, nil
	}
	raw, posOf, err := f.readDirBytes(first, size, contiguous)
	if err != nil {
		return nil, err
	}
	ents, err := parseDir(raw, posOf, nil)
	if err != nil {
		return nil, err
	}
	d := &dirData{ents: ents, byName: make(map[string]int, len(ents)), byKey: make(map[string]int, len(ents))}
	for i := len(ents) - 1; i >= 0; i-- { // the first of duplicate names wins
		ents[i].key = f.fold(ents[i].name)
		d.byName[ents[i].name] = i
		d.byKey[ents[i].key] = i
	}
	d.second = secondLinks(ents)
	f.dirs.Put(first, d, len(ents))
	return d, nil
}

// secondLinks returns the indexes of the entries naming a directory cluster an earlier entry names.
func secondLinks(ents []dirent) map[int]bool {
	second := fsys.SecondDirNames(ents, func(e dirent) uint32 { return e.first },
		func(e dirent) bool { return e.isDir() && e.allocated && e.dataLen != 0 })
	for i := range second {
		slog.Debug("exfat: second name of a directory left out", "name", ents[i].name, "cluster", ents[i].first)
	}
	return second
}

type node struct{ ent *dirent }

func (n node) isDir() bool { return n.ent == nil || n.ent.isDir() }

var errNotDir = errors.New("not a directory")

// lookup resolves an io/fs path, matching names exactly first, then through the up-case table. A
// directory whose clusters repeat an ancestor's is reported as a loop.
func (f *FS) lookup(op, name string) (node, error) {
	seen := map[uint32]bool{f.g.rootCluster: true}
	return fsys.WalkPath(op, name, node{}, node.isDir, errNotDir, func(cur node, comp string) (node, error) {
		ents, err := f.dir(cur)
		if err != nil {
			return node{}, err
		}
		i := f.match(ents, comp)
		if i < 0 {
			return node{}, fs.ErrNotExist
		}
		e := &ents.ents[i]
		if ents.second[i] {
			return node{}, fmt.Errorf("%w: %q names directory cluster %d, already listed under another name", ErrCorrupt, comp, e.first)
		}
		if e.isDir() && e.allocated && e.dataLen > 0 {
			if seen[e.first] {
				return node{}, fmt.Errorf("%w: directory %q links back to an ancestor (cluster %d)", ErrCorrupt, comp, e.first)
			}
			seen[e.first] = true
		}
		return node{ent: e}, nil
	})
}

// match returns the index of the entry comp names, or -1.
func (f *FS) match(d *dirData, comp string) int {
	if i, ok := d.byName[comp]; ok {
		return i
	}
	if i, ok := d.byKey[f.fold(comp)]; ok {
		return i
	}
	return -1
}

func (f *FS) stat(n node) (fsys.Stat, error) {
	var st fsys.Stat
	cs := f.g.clusterSize
	if n.ent == nil {
		st.Ino = 1
		st.Mode = fsys.S_IFDIR | 0o755
		c, err := f.tab.Walk(f.g.rootCluster, -1)
		if err != nil {
			return st, err
		}
		st.Size = c.Clusters * cs
	} else {
		e := n.ent
		st.Ino = uint64(e.pos / 32)
		st.Mtime, st.Btime, st.Atime = e.modified, e.created, e.accessed
		st.Ctime = st.Mtime
		st.Size = int64(min(e.dataLen, 1<<62))
		st.Mode = fsys.S_IFREG | 0o755
		if e.isDir() {
			st.Mode = fsys.S_IFDIR | 0o755
		} else if e.attr&AttrReadOnly != 0 {
			st.Mode &^= 0o222
		}
	}
	err := fsys.FinishStat(&st, func() (uint32, error) { return fsys.SubdirsOf((*dirData).subdirs)(f.dir(n)) }, cs)
	return st, err
}

func (d *dirData) subdirs() uint32 { return fsys.CountDirs(d.ents, (*dirent).isDir) }

// list lists a directory for fsys.Plain, second names left out.
func (f *FS) list(n node) ([]fsys.PlainEntry[node], error) {
	d, err := f.dir(n)
	if err != nil {
		return nil, err
	}
	return fsys.Listing(d.ents, func(i int) bool { return d.second[i] },
		func(e *dirent) fsys.PlainEntry[node] {
			return fsys.PlainEntry[node]{Name: e.name, Dir: e.isDir(), Node: node{ent: e}}
		}), nil
}

// Attributes returns the exFAT attribute bits of name (AttrReadOnly, AttrHidden, …).
func (f *FS) Attributes(name string) (uint16, error) {
	return fsys.EntryValue(&f.Plain, "attributes", name, AttrDir, func(n node) uint16 { return n.ent.attr })
}

// Usage reports clusters as blocks; free clusters are the clear bits of the allocation bitmap.
func (f *FS) Usage() fsys.Usage {
	return fsys.Usage{BlockSize: uint32(f.g.clusterSize), Blocks: uint64(f.g.clusters),
		FreeBlocks: f.free.Get("exfat: free clusters", f.countFree), NameMax: 255, Label: f.sp.label,
		UUID: fmt.Sprintf("%04X-%04X", f.g.serial>>16, f.g.serial&0xFFFF)}
}

func (f *FS) countFree() (uint64, error) {
	need := (int64(f.g.clusters) + 7) / 8
	if int64(f.sp.bitmapLen) < need {
		return 0, fmt.Errorf("%w: allocation bitmap of %d bytes for %d clusters", ErrCorrupt, f.sp.bitmapLen, f.g.clusters)
	}
	bm, err := f.readData(f.sp.bitmapCluster, need, false)
	if err != nil {
		return 0, err
	}
	used := 0
	for i, b := range bm {
		if rest := int64(f.g.clusters) - int64(i)*8; rest < 8 {
			b &= byte(1<<rest - 1)
		}
		used += bits.OnesCount8(b)
	}
	return uint64(f.g.clusters) - uint64(used), nil
}

// Close drops the caches.
func (f *FS) Close() error {
	f.dirs.Clear()
	f.tab.Reset()
	return nil
}
