package btrfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var errNotDir = errors.New("not a directory")

// dirent is one directory entry: a name and the inode (possibly the root of another subvolume).
type dirent struct {
	name     string
	sub, ino uint64
	typ      uint8 // BTRFS_FT_*
}

const ftDir = 2

// parseDirItems splits the data of a DIR_ITEM/DIR_INDEX/XATTR_ITEM item into its entries (several
// share an item when their name hashes collide): name, location key and value.
func parseDirItems(d []byte, fn func(loc key, typ uint8, name, value []byte) error) error {
	for len(d) > 0 {
		if len(d) < 30 {
			return fmt.Errorf("%w: directory item of %d bytes", ErrCorrupt, len(d))
		}
		dataLen, nameLen := int(binary.LittleEndian.Uint16(d[25:])), int(binary.LittleEndian.Uint16(d[27:]))
		if 30+nameLen+dataLen > len(d) {
			return fmt.Errorf("%w: directory item name %d and data %d bytes in %d", ErrCorrupt, nameLen, dataLen, len(d))
		}
		if err := fn(readKey(d), d[29], d[30:30+nameLen], d[30+nameLen:30+nameLen+dataLen]); err != nil {
			return err
		}
		d = d[30+nameLen+dataLen:]
	}
	return nil
}

// dirList is a directory's entries in index order with a name map; second names of a directory an
// earlier entry names are left out and refused on lookup.
type dirList struct {
	ents    []dirent
	byName  map[string]int
	refused map[string]bool
}

// readDir lists directory ip from its DIR_INDEX items, through the listing cache.
func (f *FS) readDir(ip *inode) (*dirList, error) {
	if l, ok := f.dirs.Get([2]uint64{ip.sub, ip.ino}); ok {
		return l, nil
	}
	l, err := f.listDir(ip)
	if err != nil {
		return nil, err
	}
	f.dirs.Put([2]uint64{ip.sub, ip.ino}, l, len(l.ents)+1)
	return l, nil
}

func (f *FS) listDir(ip *inode) (*dirList, error) {
	_, datas, err := f.items(f.subs[ip.sub], ip.ino, typeDirIndex)
	if err != nil {
		return nil, err
	}
	l := &dirList{byName: map[string]int{}}
	for _, d := range datas {
		err := parseDirItems(d, func(loc key, typ uint8, name, _ []byte) error {
			e := dirent{name: string(name), sub: ip.sub, ino: loc.objectid, typ: typ}
			switch loc.typ {
			case typeInodeItem:
			case typeRootItem: // a subvolume or snapshot: its own tree, entered at its root directory
				e.sub, e.ino = loc.objectid, rootDirIno
				if ok, err := f.isChildSubvol(ip, loc.objectid, name); err != nil {
					return err
				} else if !ok {
					// A snapshot copies its source's entries for nested subvolumes, but those stay
					// children of the source: the kernel shows an empty stand-in directory.
					e.sub, e.ino = ip.sub, emptySubvolDir
				}
			default:
				return fmt.Errorf("%w: directory %d entry %q points at key type %d", ErrCorrupt, ip.ino, name, loc.typ)
			}
			if len(name) == 0 || strings.ContainsAny(e.name, "/\x00") || e.name == "." || e.name == ".." {
				return fmt.Errorf("%w: directory %d has an entry named %q", ErrCorrupt, ip.ino, name)
			}
			if _, dup := l.byName[e.name]; !dup {
				l.byName[e.name] = len(l.ents)
				l.ents = append(l.ents, e)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	second := fsys.SecondDirNames(l.ents, func(e dirent) [2]uint64 { return [2]uint64{e.sub, e.ino} },
		func(e dirent) bool { return e.typ == ftDir && e.ino != emptySubvolDir }) // stand-ins all share one number
	if second != nil {
		kept := l.ents[:0]
		l.byName, l.refused = map[string]int{}, map[string]bool{}
		for i, e := range l.ents {
			if second[i] {
				slog.Debug("btrfs: a second name of a directory left out", "name", e.name, "dir", ip.ino, "ino", e.ino)
				l.refused[e.name] = true
				continue
			}
			l.byName[e.name] = len(kept)
			kept = append(kept, e)
		}
		l.ents = kept
	}
	return l, nil
}

// walk finds the inode of a symlink-free path from the top-level root directory.
func (f *FS) walk(name string) (*inode, error) {
	ip, err := f.inode(fsTreeID, rootDirIno)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return ip, nil
	}
	ancestors := [][2]uint64{{ip.sub, ip.ino}}
	for _, c := range strings.Split(name, "/") {
		if !ip.isDir() {
			return nil, errNotDir
		}
		l, err := f.readDir(ip)
		if err != nil {
			return nil, err
		}
		i, ok := l.byName[c]
		if l.refused[c] {
			return nil, fmt.Errorf("%w: %q is a second name of a directory listed under another", ErrCorrupt, c)
		}
		if !ok {
			return nil, fs.ErrNotExist
		}
		e := l.ents[i]
		if ip, err = f.inode(e.sub, e.ino); err != nil {
			return nil, err
		}
		if ip.isDir() {
			if slices.Contains(ancestors, [2]uint64{ip.sub, ip.ino}) {
				return nil, fmt.Errorf("%w: directory entry %q links back to an ancestor (a directory loop)", ErrCorrupt, c)
			}
			ancestors = append(ancestors, [2]uint64{ip.sub, ip.ino})
		}
	}
	return ip, nil
}

func (f *FS) info(name string, ip *inode) *fsys.Info {
	return &fsys.Info{EntryName: name, St: f.stat(ip)}
}

func (f *FS) readLink(ip *inode) (string, error) {
	if ip.mode&fsys.S_IFMT != fsys.S_IFLNK {
		return "", fs.ErrInvalid
	}
	if ip.size > 4096 {
		return "", fmt.Errorf("%w: symlink of %d bytes", ErrCorrupt, ip.size)
	}
	b := make([]byte, ip.size)
	r := &fileReader{f: f, ip: ip}
	if _, err := r.readAt(b, 0); err != nil {
		return "", err
	}
	return string(b), nil
}

// ReadDir lists a directory sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	ip, p, err := f.Resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !ip.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	return f.dirEntries(ip, p)
}

func (f *FS) dirEntries(ip *inode, name string) ([]fs.DirEntry, error) {
	l, err := f.readDir(ip)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, 0, len(l.ents))
	for _, e := range l.ents {
		out = append(out, &dirEntry{f: f, e: e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// dirEntry reads its inode on demand for Info.
type dirEntry struct {
	f *FS
	e dirent
}

func (d *dirEntry) Name() string { return d.e.name }
func (d *dirEntry) IsDir() bool  { return d.e.typ == ftDir }
func (d *dirEntry) Type() fs.FileMode {
	switch d.e.typ {
	case ftDir:
		return fs.ModeDir
	case 3:
		return fs.ModeDevice | fs.ModeCharDevice
	case 4:
		return fs.ModeDevice
	case 5:
		return fs.ModeNamedPipe
	case 6:
		return fs.ModeSocket
	case 7:
		return fs.ModeSymlink
	}
	return 0
}
func (d *dirEntry) Info() (fs.FileInfo, error) {
	ip, err := d.f.inode(d.e.sub, d.e.ino)
	if err != nil {
		return nil, err
	}
	return d.f.info(d.e.name, ip), nil
}

// Open opens a file (an fsys.File with ReadAt) or a directory.
func (f *FS) Open(name string) (fs.File, error) {
	ip, p, err := f.Resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	fi := f.info(path.Base(p), ip)
	if ip.isDir() {
		return &fsys.DirFile{Path: name, Info: fi, Load: func() ([]fs.DirEntry, error) { return f.dirEntries(ip, p) }}, nil
	}
	return &file{fileReader: fileReader{f: f, ip: ip}, name: name, fi: fi}, nil
}

// ListXattr names the extended attributes, sorted.
func (f *FS) ListXattr(name string) ([]string, error) {
	ip, _, err := f.Resolve("listxattr", name, false)
	if err != nil {
		return nil, err
	}
	x, err := f.xattrsOf("listxattr", name, ip)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(x))
	for n := range x {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// GetXattr returns one attribute's value.
func (f *FS) GetXattr(name, attr string) ([]byte, error) {
	ip, _, err := f.Resolve("getxattr", name, false)
	if err != nil {
		return nil, err
	}
	return f.xattr(ip, name, attr)
}

func (f *FS) xattr(ip *inode, name, attr string) ([]byte, error) {
	x, err := f.xattrsOf("getxattr", name, ip)
	if err != nil {
		return nil, err
	}
	v, ok := x[attr]
	if !ok {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fmt.Errorf("%w: %s", fsys.ErrNoXattr, attr)}
	}
	return v, nil
}

func (f *FS) xattrsOf(op, name string, ip *inode) (map[string][]byte, error) {
	_, datas, err := f.items(f.subs[ip.sub], ip.ino, typeXattr)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	out := map[string][]byte{}
	for _, d := range datas {
		err := parseDirItems(d, func(_ key, _ uint8, n, v []byte) error {
			out[string(n)] = append([]byte(nil), v...)
			return nil
		})
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	return out, nil
}

// emptySubvolDir is the inode number of the stand-in directory for a subvolume entry whose
// subvolume belongs elsewhere.
const emptySubvolDir = 2

// isChildSubvol reports whether subvolume id hangs under directory ip by name: a ROOT_REF from
// ip's subvolume names it with that directory and name.
func (f *FS) isChildSubvol(ip *inode, id uint64, name []byte) (bool, error) {
	d, found, err := f.item(f.root, key{ip.sub, typeRootRef, id})
	if err != nil || !found {
		return false, err
	}
	if len(d) < 18 {
		return false, fmt.Errorf("%w: root ref of %d bytes", ErrCorrupt, len(d))
	}
	n := int(binary.LittleEndian.Uint16(d[16:]))
	return binary.LittleEndian.Uint64(d) == ip.ino && 18+n <= len(d) && string(d[18:18+n]) == string(name), nil
}
