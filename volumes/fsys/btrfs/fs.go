package btrfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const (
	fsTreeID      = 5
	csumTreeID    = 7
	firstSubvolID = 256
	lastSubvolID  = 1<<64 - 256 // ids above are internal trees (tree log, reloc…)
	rootDirIno    = 256
	nodeCacheSize = 32 << 20
	dataCacheSize = 16 << 20
	// dirCacheEntries bounds the cached directory listings by their entries: a lookup per path
	// component must not list a big directory again each time.
	dirCacheEntries = 1 << 17
)

// FS is an open Btrfs filesystem. It is safe for concurrent use.
type FS struct {
	fsys.Linked[*inode] // Stat, Lstat, ReadLink, Resolve

	sb    *superblock
	cm    *chunkMap
	root  tree // the root tree
	nodes *fsys.LRU[uint64, *node]
	data  *fsys.LRU[uint64, []byte] // decompressed extents by disk address
	subs  map[uint64]tree           // subvolume id → its FS tree
	dirs  *fsys.LRU[[2]uint64, *dirList]
	csums *tree // the data checksum tree (nil: none, data is read unverified)
}

// Open reads the Btrfs filesystem on one device of size bytes.
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	return OpenDevices([]Device{{R: r, Size: size}})
}

// Device is one device of a (possibly multi-device) filesystem.
type Device struct {
	R    io.ReaderAt
	Size int64
}

// OpenDevices reads a filesystem from its devices, matched by the device id each superblock carries.
// Chunks whose every copy lies on an absent device read as errors; the rest reads normally.
func OpenDevices(devs []Device) (*FS, error) {
	if len(devs) == 0 {
		return nil, fmt.Errorf("btrfs: no devices")
	}
	var sb *superblock
	cm := &chunkMap{devs: map[uint64]device{}}
	for i, d := range devs {
		s, err := readSuper(d.R, d.Size)
		if err != nil {
			return nil, fmt.Errorf("btrfs device %d: %w", i, err)
		}
		if sb != nil && s.fsid != sb.fsid {
			return nil, fmt.Errorf("btrfs device %d belongs to another filesystem", i)
		}
		if _, dup := cm.devs[s.devid]; dup {
			slog.Warn("btrfs: two devices carry the same device id; the second is ignored", "devid", s.devid)
			continue
		}
		if sb == nil || s.generation > sb.generation {
			sb = s
		}
		cm.devs[s.devid] = device{d.R, d.Size}
	}
	f := &FS{sb: sb, cm: cm, nodes: fsys.NewLRU[uint64, *node](nodeCacheSize), data: fsys.NewLRU[uint64, []byte](dataCacheSize),
		subs: map[uint64]tree{}, dirs: fsys.NewLRU[[2]uint64, *dirList](dirCacheEntries)}
	f.Linked = fsys.Linked[*inode]{Walk: f.walk, Info: f.info, Link: f.readLink}
	// The system chunk array maps the chunk tree; the chunk tree maps everything.
	b := sb.sysChunkArray
	for len(b) > 0 {
		if len(b) < 17 {
			return nil, fmt.Errorf("%w: system chunk array ends inside a key", ErrCorrupt)
		}
		k := readKey(b)
		if k.typ != typeChunkItem {
			return nil, fmt.Errorf("%w: system chunk array holds key type %d", ErrCorrupt, k.typ)
		}
		c, n, err := parseChunk(k.offset, b[17:])
		if err != nil {
			return nil, fmt.Errorf("system chunk array: %w", err)
		}
		cm.add(c)
		b = b[17+n:]
	}
	var missing []uint64 // device ids the chunk tree lists and the set lacks
	err := f.search(tree{sb.chunkRoot, sb.chunkLevel}, key{}, func(k key, d []byte) (bool, error) {
		if _, ok := cm.devs[k.offset]; k.typ == typeDevItem && !ok && len(missing) < 16 {
			missing = append(missing, k.offset)
		}
		if k.typ == typeChunkItem {
			c, _, err := parseChunk(k.offset, d)
			if err != nil {
				return false, fmt.Errorf("chunk tree: %w", err)
			}
			cm.add(c)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("btrfs: %w", err)
	}
	if len(missing) > 0 || sb.numDevices > uint64(len(cm.devs)) {
		slog.Warn("btrfs: devices missing, reading degraded (from the copies and parity left)", "fsid", f.Usage().UUID,
			"have", len(cm.devs), "filesystem has", sb.numDevices, "missing devids", missing)
	}
	f.root = tree{sb.root, sb.rootLevel}
	// Every subvolume's tree, from the ROOT_ITEMs of the root tree (the newest of each id).
	err = f.search(f.root, key{fsTreeID, typeRootItem, 0}, func(k key, d []byte) (bool, error) {
		if k.objectid > lastSubvolID {
			return false, nil
		}
		if k.typ != typeRootItem || (k.objectid != fsTreeID && k.objectid != csumTreeID && k.objectid < firstSubvolID) {
			return true, nil
		}
		if len(d) < 239 {
			return false, fmt.Errorf("%w: root item %d of %d bytes", ErrCorrupt, k.objectid, len(d))
		}
		level := d[238]
		if level >= maxLevel {
			return false, fmt.Errorf("%w: subvolume %d tree level %d", ErrCorrupt, k.objectid, level)
		}
		t := tree{binary.LittleEndian.Uint64(d[176:]), level}
		if k.objectid == csumTreeID {
			f.csums = &t
			return true, nil
		}
		f.subs[k.objectid] = t
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("btrfs: root tree: %w", err)
	}
	if _, ok := f.subs[fsTreeID]; !ok {
		return nil, fmt.Errorf("btrfs: %w: no top-level subvolume", ErrCorrupt)
	}
	return f, nil
}

// inode is one inode of one subvolume.
type inode struct {
	sub, ino                   uint64
	size                       int64
	nbytes                     int64
	nlink                      uint32
	uid, gid                   uint32
	mode                       uint32
	rdev                       uint64
	atime, ctime, mtime, otime time.Time
}

func (ip *inode) isDir() bool { return ip.mode&fsys.S_IFMT == fsys.S_IFDIR }

func timespec(b []byte) time.Time {
	return time.Unix(int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint32(b[8:]))).UTC()
}

// inode reads inode ino of subvolume sub.
func (f *FS) inode(sub, ino uint64) (*inode, error) {
	t, ok := f.subs[sub]
	if !ok {
		return nil, fmt.Errorf("%w: subvolume %d not found", ErrCorrupt, sub)
	}
	if ino == emptySubvolDir {
		return &inode{sub: sub, ino: ino, mode: fsys.S_IFDIR | 0o755, nlink: 1}, nil
	}
	d, found, err := f.item(t, key{ino, typeInodeItem, 0})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: inode %d of subvolume %d not found", ErrCorrupt, ino, sub)
	}
	if len(d) < 160 {
		return nil, fmt.Errorf("%w: inode item %d of %d bytes", ErrCorrupt, ino, len(d))
	}
	le32 := func(o int) uint32 { return binary.LittleEndian.Uint32(d[o:]) }
	le64 := func(o int) uint64 { return binary.LittleEndian.Uint64(d[o:]) }
	return &inode{sub: sub, ino: ino, size: int64(le64(16) & (1<<62 - 1)), nbytes: int64(le64(24) & (1<<62 - 1)),
		nlink: le32(40), uid: le32(44), gid: le32(48), mode: le32(52), rdev: le64(56),
		atime: timespec(d[112:]), ctime: timespec(d[124:]), mtime: timespec(d[136:]), otime: timespec(d[148:])}, nil
}

// Ino is the inode number shown: the stored one in the top-level subvolume; in others the subvolume
// id in the high bits keeps numbers unique across the mount.
func (ip *inode) Ino() uint64 {
	if ip.sub == fsTreeID {
		return ip.ino
	}
	return ip.sub<<40 | ip.ino&(1<<40-1)
}

func (f *FS) stat(ip *inode) fsys.Stat {
	ss := int64(f.sb.sectorSize)
	st := fsys.Stat{Ino: ip.Ino(), Nlink: ip.nlink, Mode: ip.mode, Uid: ip.uid, Gid: ip.gid, Size: ip.size,
		AllocatedSize: (ip.nbytes + ss - 1) / ss * ss, Atime: ip.atime, Mtime: ip.mtime, Ctime: ip.ctime, Btime: ip.otime}
	if t := ip.mode & fsys.S_IFMT; t == fsys.S_IFCHR || t == fsys.S_IFBLK {
		// The kernel keeps its own dev_t (major in bits 20+); Stat wants the Linux userspace encoding.
		major, minor := ip.rdev>>20, ip.rdev&0xfffff
		st.Rdev = minor&0xff | major&0xfff<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
	}
	return st
}

// Usage reports sectors as blocks.
func (f *FS) Usage() fsys.Usage {
	ss := uint64(f.sb.sectorSize)
	free := uint64(0)
	if f.sb.totalBytes > f.sb.bytesUsed {
		free = (f.sb.totalBytes - f.sb.bytesUsed) / ss
	}
	return fsys.Usage{BlockSize: uint32(ss), Blocks: f.sb.totalBytes / ss, FreeBlocks: free, NameMax: 255,
		Label: f.sb.label, UUID: fmt.Sprintf("%x-%x-%x-%x-%x", f.sb.fsid[0:4], f.sb.fsid[4:6], f.sb.fsid[6:8], f.sb.fsid[8:10], f.sb.fsid[10:16])}
}

// Close drops the caches.
func (f *FS) Close() error {
	f.nodes.Clear()
	f.data.Clear()
	f.dirs.Clear()
	return nil
}
