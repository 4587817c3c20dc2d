// Package fat reads FAT12, FAT16 and FAT32 volumes as an fsys.FS.
//
// What it shows follows a Linux vfat mount with default options as root and tz=UTC: names are the VFAT
// long names (UTF-16, surrogate pairs included) or, without one, the 8.3 name with the Windows NT
// lowercase flags applied; lookups are case-insensitive and also accept the 8.3 alias. Every directory
// and file has mode 0755 and uid/gid 0; the read-only attribute clears the write bits of files (not of
// directories). Stored local times are taken as UTC: mtime (2 s resolution), creation time as Btime
// (10 ms), access date as Atime (midnight), and Ctime = Mtime as the kernel reports. The root directory
// has no times. A directory's Nlink is 2 plus its subdirectories, as the kernel counts. Lookups
// through a directory that links back to an ancestor fail instead of looping. Ino is the volume byte
// offset of the entry's short slot divided by 32 (root: 1), stable for an unchanged volume; there are
// no hard links, symlinks or extended attributes. Directory listings stop at the first end marker
// (0x00), as the FAT specification and mtools do.
package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// FS is an open FAT volume. It is safe for concurrent use.
type FS struct {
	fsys.Plain[node] // Stat, Lstat, ReadLink, ReadDir, ListXattr, GetXattr

	r    io.ReaderAt
	size int64
	g    *geometry
	tab  *table

	label string
	free  fsys.OnceCount
	dirs  *fsys.LRU[uint32, *dirData] // by first cluster, bounded by entry count
}

const maxCachedDirEntries = 1 << 17

// Info describes the volume beyond what Usage carries.
type Info struct {
	Type         Type
	VolumeID     uint32 // serial number from the BPB (0 when the BPB has none)
	HasVolumeID  bool
	Label        string // root-directory label, else the BPB label
	BPBLabel     string
	ClusterSize  int64
	Clusters     uint32 // data clusters
	Dirty        bool   // the clean-shutdown bit in FAT entry 1 is clear (FAT16/32)
	BackupBoot   bool   // the primary FAT32 boot sector was unusable; the backup was read
	RootEntries  int64  // FAT12/16 fixed root directory slots
	FirstDataOff int64
}

// Open reads a FAT12/16/32 volume of size bytes from r.
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	g, err := readBoot(r, size)
	if err != nil {
		return nil, err
	}
	f := &FS{r: r, size: size, g: g, dirs: fsys.NewLRU[uint32, *dirData](maxCachedDirEntries)}
	f.tab = newTable(r, g)
	f.Plain = fsys.Plain[node]{Lookup: f.lookup, StatNode: f.stat, IsDir: node.isDir, List: f.list, NotDir: errNotDir,
		NameOf: func(n node) (string, bool) { return fsys.EntryName(n.ent, func(e *dirent) string { return e.name }) }}
	f.label = g.bpbLabel
	// The root directory's volume-label entry wins over the BPB copy, as blkid and Windows use it.
	raw, _, err := f.readDirBytes(f.rootCluster())
	if err != nil {
		return nil, fmt.Errorf("reading root directory: %w", err)
	}
	for i := 0; i+32 <= len(raw); i += 32 {
		e := raw[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] != 0xE5 && e[11] != attrLFN && e[11]&AttrVolume != 0 && e[11]&AttrDir == 0 {
			f.label = strings.TrimRight(decodeOEM(e[:11]), " ")
			break
		}
	}
	if g.usedBackupBoot {
		slog.Warn("fat: primary boot sector invalid, using the FAT32 backup boot sector")
	}
	return f, nil
}

// Info returns the volume's boot-sector facts.
func (f *FS) Info() Info {
	return Info{Type: f.g.typ, VolumeID: f.g.volumeID, HasVolumeID: f.g.hasVolumeID, Label: f.label,
		BPBLabel: f.g.bpbLabel, ClusterSize: f.g.clusterSize, Clusters: f.g.clusters, Dirty: f.g.dirty,
		BackupBoot: f.g.usedBackupBoot, RootEntries: f.g.rootEntries, FirstDataOff: f.g.dataOffset}
}

func (f *FS) rootCluster() uint32 {
	if f.g.typ == FAT32 {
		return f.g.rootCluster
	}
	return 0
}

// dirData is a parsed directory with lookup indexes, so large directories resolve names in O(1).
type dirData struct {
	ents    []dirent
	byName  map[string]int // exact long (or displayed) name
	byFold  map[string]int // upper-cased name, for case-insensitive lookup
	byShort map[string]int // stored 8.3 alias
	// second marks the entries naming a directory cluster that an earlier entry (on disk) already
	// names: a directory has one name, and a re-pointed sibling would double a walk at every level.
	second map[int]bool
	// dotdot is the first cluster the ".." entry names (0 for the root), when the listing starts with
	// "." and ".." (hasDotdot): what tells a directory's one parent.
	dotdot    uint32
	hasDotdot bool
}

func newDirData(ents []dirent) *dirData {
	d := &dirData{ents: ents, byName: make(map[string]int, len(ents)), byFold: make(map[string]int, len(ents)),
		byShort: make(map[string]int, len(ents))}
	// The first of duplicate names wins, as a linear search would find it.
	for i := len(ents) - 1; i >= 0; i-- {
		d.byName[ents[i].name] = i
		d.byFold[strings.ToUpper(ents[i].name)] = i
		d.byShort[ents[i].short] = i
	}
	d.second = fsys.SecondDirNames(ents, func(e dirent) uint32 { return e.cluster },
		func(e dirent) bool { return e.isDir() && e.cluster != 0 })
	for i := range d.second {
		slog.Debug("fat: second name of a directory left out", "name", ents[i].name, "cluster", ents[i].cluster)
	}
	return d
}

// entries lists a node's directory. A subdirectory entry with no first cluster is empty, as the
// kernel sees it (cluster 0 must not be taken for the FAT12/16 root, or the tree would loop).
func (f *FS) entries(n node) (*dirData, error) {
	if n.ent != nil && n.ent.cluster == 0 {
		return newDirData(nil), nil
	}
	return f.dir(f.dirCluster(n))
}

// dir returns the parsed directory starting at cluster, through a bounded cache.
func (f *FS) dir(cluster uint32) (*dirData, error) {
	if d, ok := f.dirs.Get(cluster); ok {
		return d, nil
	}
	raw, posOf, err := f.readDirBytes(cluster)
	if err != nil {
		return nil, err
	}
	d := newDirData(parseDir(raw, posOf))
	d.dotdot, d.hasDotdot = parseDotdot(raw)
	f.dirs.Put(cluster, d, len(d.ents))
	return d, nil
}

// node is a resolved path: the root (ent nil) or a directory entry.
type node struct {
	ent *dirent
}

func (n node) isDir() bool { return n.ent == nil || n.ent.isDir() }

func (f *FS) dirCluster(n node) uint32 {
	if n.ent == nil {
		return f.rootCluster()
	}
	return n.ent.cluster
}

var errNotDir = errors.New("not a directory")

// lookup resolves an io/fs path. Each component matches a long name exactly, then case-insensitively,
// then the 8.3 alias. A directory that links back to one of its ancestors is reported as a loop.
func (f *FS) lookup(op, name string) (node, error) {
	seen := map[uint32]bool{f.rootCluster(): true}
	return fsys.WalkPath(op, name, node{}, node.isDir, errNotDir, func(cur node, comp string) (node, error) {
		ents, err := f.entries(cur)
		if err != nil {
			return node{}, err
		}
		i := match(ents, comp)
		if i < 0 {
			return node{}, fs.ErrNotExist
		}
		e := &ents.ents[i]
		if ents.second[i] {
			return node{}, fmt.Errorf("%w: %q names directory cluster %d, already listed under another name", ErrCorrupt, comp, e.cluster)
		}
		if e.isDir() && e.cluster != 0 {
			if seen[e.cluster] {
				return node{}, fmt.Errorf("%w: directory %q links back to an ancestor (cluster %d)", ErrCorrupt, comp, e.cluster)
			}
			if f.linkedElsewhere(f.dirCluster(cur), e) {
				return node{}, fmt.Errorf("%w: directory %q (cluster %d) names another directory as its parent", ErrCorrupt, comp, e.cluster)
			}
			seen[e.cluster] = true
		}
		return node{ent: e}, nil
	})
}

// match returns the index of the entry comp names, or -1.
func match(d *dirData, comp string) int {
	if i, ok := d.byName[comp]; ok {
		return i
	}
	up := strings.ToUpper(comp)
	if i, ok := d.byFold[up]; ok {
		return i
	}
	if i, ok := d.byShort[up]; ok {
		return i
	}
	return -1
}

// linkedElsewhere reports whether directory entry e, listed in the directory at cluster dir (0 or the
// FAT32 root cluster for the root), is a second link: its ".." names another directory's first
// cluster (0 for the root). A directory whose first two entries are not "." and ".." is not judged,
// so damage shows when it is listed rather than hiding it.
func (f *FS) linkedElsewhere(dir uint32, e *dirent) bool {
	parent, ok := f.dotdot(e.cluster)
	if !ok {
		return false
	}
	if dir == f.rootCluster() {
		return parent != 0 && parent != dir
	}
	return parent != dir
}

// dotdot returns the first cluster named by the ".." entry of the directory at cluster c. It goes
// through the listing cache: a walk lists that directory next anyway.
func (f *FS) dotdot(c uint32) (uint32, bool) {
	if c < 2 || c >= f.g.clusters+2 {
		return 0, false
	}
	d, err := f.dir(c)
	if err != nil {
		return 0, false
	}
	return d.dotdot, d.hasDotdot
}

// parseDotdot reads the cluster of the ".." entry of a directory's raw listing, which must start with
// "." and ".." directory entries.
func parseDotdot(raw []byte) (uint32, bool) {
	if len(raw) < 64 || string(raw[:11]) != ".          " || string(raw[32:43]) != "..         " || raw[43]&AttrDir == 0 {
		return 0, false
	}
	le := binary.LittleEndian
	return uint32(le.Uint16(raw[58:])) | uint32(le.Uint16(raw[52:]))<<16, true
}

// stat builds the Stat of a node as a Linux vfat mount reports it.
func (f *FS) stat(n node) (fsys.Stat, error) {
	var st fsys.Stat
	cs := f.g.clusterSize
	if n.ent == nil {
		st.Ino = 1
		st.Mode = fsys.S_IFDIR | 0o755
		size, err := f.dirSize(f.rootCluster())
		if err != nil {
			return st, err
		}
		st.Size = size
	} else {
		e := n.ent
		st.Ino = uint64(e.pos / 32)
		st.Mtime = fatTime(e.modDate, e.modTime, 0)
		st.Ctime = st.Mtime
		st.Atime = fatTime(e.accDate, 0, 0)
		st.Btime = fatTime(e.crtDate, e.crtTime, e.crtCS)
		if e.isDir() {
			st.Mode = fsys.S_IFDIR | 0o755
			if e.cluster != 0 {
				size, err := f.dirSize(e.cluster)
				if err != nil {
					return st, err
				}
				st.Size = size
			}
		} else {
			st.Mode = fsys.S_IFREG | 0o755
			if e.attr&AttrReadOnly != 0 {
				st.Mode &^= 0o222
			}
			st.Size = int64(e.size)
		}
	}
	err := fsys.FinishStat(&st, func() (uint32, error) { return fsys.SubdirsOf((*dirData).subdirs)(f.entries(n)) }, cs)
	return st, err
}

func (d *dirData) subdirs() uint32 { return fsys.CountDirs(d.ents, (*dirent).isDir) }

// dirSize is the byte length of a directory: its clusters, or the fixed FAT12/16 root region.
func (f *FS) dirSize(cluster uint32) (int64, error) {
	if cluster == 0 {
		if f.g.typ != FAT32 {
			return f.g.rootEntries * 32, nil
		}
		return 0, nil
	}
	c, err := f.tab.Walk(cluster, maxDirBytes/f.g.clusterSize+1)
	if err != nil {
		return 0, err
	}
	return c.Clusters * f.g.clusterSize, nil
}

// list lists a directory for fsys.Plain: second names and directories claimed by another parent left out.
func (f *FS) list(n node) ([]fsys.PlainEntry[node], error) {
	d, err := f.entries(n)
	if err != nil {
		return nil, err
	}
	dir := f.dirCluster(n)
	return fsys.Listing(d.ents, func(i int) bool {
		e := &d.ents[i]
		return d.second[i] || (e.isDir() && e.cluster != 0 && f.linkedElsewhere(dir, e))
	}, func(e *dirent) fsys.PlainEntry[node] {
		return fsys.PlainEntry[node]{Name: e.name, Dir: e.isDir(), Node: node{ent: e}}
	}), nil
}

// ShortName returns the 8.3 alias of name as stored ("NAME.EXT", upper case); "" for the root.
func (f *FS) ShortName(name string) (string, error) {
	return fsys.EntryValue(&f.Plain, "shortname", name, "", func(n node) string { return n.ent.short })
}

// Attributes returns the raw FAT attribute byte of name (AttrReadOnly, AttrHidden, …); 0x10 for the root.
func (f *FS) Attributes(name string) (byte, error) {
	return fsys.EntryValue(&f.Plain, "attributes", name, AttrDir, func(n node) byte { return n.ent.attr })
}

// Usage reports clusters as blocks; free clusters are counted in the FAT as the kernel's statfs does.
func (f *FS) Usage() fsys.Usage {
	u := fsys.Usage{BlockSize: uint32(f.g.clusterSize), Blocks: uint64(f.g.clusters),
		FreeBlocks: f.free.Get("fat: free clusters", f.tab.countFree), NameMax: 255, Label: f.label}
	if f.g.hasVolumeID {
		u.UUID = fmt.Sprintf("%04X-%04X", f.g.volumeID>>16, f.g.volumeID&0xFFFF)
	}
	return u
}

// Close drops the caches.
func (f *FS) Close() error {
	f.dirs.Clear()
	f.tab.Reset()
	return nil
}
