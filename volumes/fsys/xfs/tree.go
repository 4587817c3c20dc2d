package xfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var errNotDir = errors.New("not a directory")

const maxSymlinkLen = 1024

// walk finds the inode of a symlink-free path, component by component from the root.
func (f *FS) walk(name string) (*inode, error) {
	ip, err := f.inode(f.sb.rootIno)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return ip, nil
	}
	// The directories on the path so far: an entry naming one of them again (damage, or a hand-made
	// link) would make the tree endless, so it is reported instead of entered.
	ancestors := []uint64{ip.ino}
	for _, c := range strings.Split(name, "/") {
		if !ip.isDir() {
			return nil, errNotDir
		}
		e, ok, err := f.lookup(ip, c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fs.ErrNotExist
		}
		parent := ip.ino
		if ip, err = f.inode(e.ino); err != nil {
			return nil, err
		}
		if ip.isDir() {
			if slices.Contains(ancestors, ip.ino) {
				return nil, fmt.Errorf("%w: directory entry %q links back to its ancestor inode %d (a directory loop)", ErrCorrupt, c, ip.ino)
			}
			// A directory has one parent, named by its "..": reached from another it is a second link.
			// A directory that cannot be read is left to fail when listed, so Stat still describes it.
			if dotdot, err := f.parentOf(ip); err == nil && dotdot != parent {
				return nil, fmt.Errorf("directory entry %q (inode %d, parent %d): %w", c, ip.ino, dotdot, errDirLoop)
			}
			ancestors = append(ancestors, ip.ino)
		}
	}
	return ip, nil
}

// lookup finds one name in directory ip: from its cached name map, through the hash index for a big
// directory, or else by reading (and caching) the whole directory.
func (f *FS) lookup(ip *inode, name string) (dirent, bool, error) {
	if d, ok := f.dirs.Get(ip.ino); ok {
		return d.lookup(name)
	}
	if ip.format != fmtLocal && ip.size > hashLookupMinSize {
		e, found, err := f.hashLookup(ip, name)
		if err != nil {
			return dirent{}, false, fmt.Errorf("directory %v: %w", ip, err)
		}
		// A second name of a directory is refused only once the listing is cached (ReadDir leaves
		// it out regardless): reading a big directory whole for every lookup would cost too much.
		return e, found, nil
	}
	d, err := f.readDir(ip)
	if err != nil {
		return dirent{}, false, err
	}
	return d.lookup(name)
}

func (f *FS) info(name string, ip *inode) *fsys.Info {
	if name == "/" || name == "" {
		name = "."
	}
	return &fsys.Info{EntryName: name, St: ip.stat(f.sb)}
}

func (f *FS) readLink(ip *inode) (string, error) {
	if !ip.isSymlink() {
		return "", fmt.Errorf("%v: %w", ip, fs.ErrInvalid)
	}
	if ip.size <= 0 || ip.size > maxSymlinkLen {
		return "", corruptf("%v: symlink length %d", ip, ip.size)
	}
	if ip.format == fmtLocal {
		return string(ip.dfork[:ip.size]), nil
	}
	ex, err := f.forkExtents(ip, false)
	if err != nil {
		return "", err
	}
	return f.remoteSymlink(ip, ex)
}

// remoteSymlink reads a symlink target kept in blocks; v5 blocks start with a checked header.
func (f *FS) remoteSymlink(ip *inode, ex []extent) (string, error) {
	sb := f.sb
	per := int64(sb.blockSize)
	if sb.crc {
		per -= remoteHdrSize
	}
	out := make([]byte, 0, ip.size)
	b := make([]byte, sb.blockSize)
	for blk := int64(0); int64(len(out)) < ip.size; blk++ {
		if err := f.readMapped(ex, b, blk*int64(sb.blockSize)); err != nil {
			return "", err
		}
		want := min(per, ip.size-int64(len(out)))
		data := b
		if sb.crc {
			if string(b[:4]) != "XSLM" || !crcOK(b, remoteCRCOff) {
				return "", corruptf("%v: symlink block %d: bad magic or checksum", ip, blk)
			}
			if off, n := be.Uint32(b[4:]), be.Uint32(b[8:]); int64(off) != int64(len(out)) || int64(n) != want || be.Uint64(b[32:]) != ip.ino {
				return "", corruptf("%v: symlink block %d: header offset %d/%d bytes", ip, blk, off, n)
			}
			data = b[remoteHdrSize:]
		}
		out = append(out, data[:want]...)
	}
	return string(out), nil
}

// ReadDir lists a directory (following symlinks to it), sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	ip, _, err := f.Resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return f.dirEntries("readdir", name, ip)
}

func (f *FS) dirEntries(op, name string, ip *inode) ([]fs.DirEntry, error) {
	if !ip.isDir() {
		return nil, &fs.PathError{Op: op, Path: name, Err: errNotDir}
	}
	d, err := f.readDir(ip)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	out := make([]fs.DirEntry, 0, len(d.ents))
	for _, e := range d.ents {
		if f.linkedElsewhere(ip, e) {
			continue
		}
		out = append(out, &dirEntry{f: f, e: e})
	}
	return out, nil
}

// linkedElsewhere reports whether e names a directory whose ".." is not dir: a second link to a
// directory that lives elsewhere (walk refuses a lookup through it). The child's listing is cached,
// and a walk reads it next anyway; a child that cannot be read stays listed, so its own error shows.
func (f *FS) linkedElsewhere(dir *inode, e dirent) bool {
	if e.ftype != 0 && e.ftype != 2 {
		return false
	}
	child, err := f.inode(e.ino)
	if err != nil || !child.isDir() {
		return false
	}
	parent, err := f.parentOf(child)
	if err != nil || parent == dir.ino {
		return false
	}
	slog.Debug("xfs: directory listed away from its parent left out", "name", e.name, "inode", e.ino, "parent", parent)
	return true
}

// dirEntry reads its inode only when asked for more than the name (and the type, when dirents carry it).
type dirEntry struct {
	f *FS
	e dirent
}

func (d *dirEntry) Name() string { return d.e.name }
func (d *dirEntry) Ino() uint64  { return d.e.ino }
func (d *dirEntry) IsDir() bool  { return d.Type().IsDir() }

func (d *dirEntry) Type() fs.FileMode {
	if d.e.ftype != 0 && int(d.e.ftype) < len(dirFType) {
		return dirFType[d.e.ftype]
	}
	fi, err := d.Info()
	if err != nil {
		return fs.ModeIrregular
	}
	return fi.Mode().Type()
}

func (d *dirEntry) Info() (fs.FileInfo, error) {
	ip, err := d.f.inode(d.e.ino)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.e.name, Err: err}
	}
	return d.f.info(d.e.name, ip), nil
}

func (d *dirEntry) String() string { return fs.FormatDirEntry(d) }

// ListXattr names the extended attributes of name (not following a final symlink).
func (f *FS) ListXattr(name string) ([]string, error) {
	ip, _, err := f.Resolve("listxattr", name, false)
	if err != nil {
		return nil, err
	}
	attrs, err := f.listAttrs(ip)
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: name, Err: err}
	}
	names := make([]string, 0, len(attrs))
	for i, a := range attrs {
		if i == 0 || a.name != attrs[i-1].name {
			names = append(names, a.name)
		}
	}
	return names, nil
}

// GetXattr returns one attribute's value (not following a final symlink).
func (f *FS) GetXattr(name, attr string) ([]byte, error) {
	ip, _, err := f.Resolve("getxattr", name, false)
	if err != nil {
		return nil, err
	}
	attrs, err := f.listAttrs(ip)
	if err != nil {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: err}
	}
	for _, a := range attrs {
		if a.name == attr {
			v, err := f.attrValue(ip, a)
			if err != nil {
				return nil, &fs.PathError{Op: "getxattr", Path: name, Err: err}
			}
			return v, nil
		}
	}
	return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fmt.Errorf("%s: %w", attr, fsys.ErrNoXattr)}
}

// Open follows symlinks; files read at offsets concurrently, directories list themselves.
func (f *FS) Open(name string) (fs.File, error) {
	ip, _, err := f.Resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	if ip.isDir() {
		return &fsys.DirFile{Path: name, Info: f.info(base, ip), Load: func() ([]fs.DirEntry, error) { return f.dirEntries("readdir", name, ip) }}, nil
	}
	fl := &file{f: f, ip: ip, name: name, base: base}
	if ip.isReg() && ip.format != fmtLocal {
		if ip.flags&diflagRealtime != 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("xfs: file data on the realtime device is not supported")}
		}
		if fl.ex, err = f.forkExtents(ip, false); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	return fl, nil
}

type file struct {
	f          *FS
	ip         *inode
	ex         []extent
	name, base string
	fsys.Cursor
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.f.info(fl.base, fl.ip), nil }
func (fl *file) Close() error               { return nil }

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	if !fl.ip.isReg() { // devices, fifos and sockets have no data on the volume
		return 0, io.EOF
	}
	size := fl.ip.size
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	var err error
	if fl.ip.format == fmtLocal {
		copy(p[:n], fl.ip.dfork[off:])
	} else {
		err = fl.f.readMapped(fl.ex, p[:n], off)
	}
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: err}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) Read(p []byte) (int, error) { return fl.ReadFrom(fl, p) }

func (fl *file) Seek(off int64, whence int) (int64, error) {
	return fl.SeekIn(fl.name, fl.ip.size, off, whence)
}
