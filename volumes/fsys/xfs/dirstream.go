package xfs

import (
	"io/fs"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var _ fsys.DirStreamer = (*FS)(nil)

// OpenDirStream lists a directory a batch at a time in on-disk order, holding one directory block: a
// cookie is the byte offset of the next entry in the directory's data space (what the kernel's
// readdir position is too). A shortform directory (a few entries in the inode) is served from its
// sorted listing. Symlinks are followed as ReadDir follows them.
func (f *FS) OpenDirStream(name string) (fsys.DirStream, error) {
	ip, _, err := f.Resolve("opendir", name, true)
	if err != nil {
		return nil, err
	}
	if !ip.isDir() {
		return nil, &fs.PathError{Op: "opendir", Path: name, Err: errNotDir}
	}
	s := &dirStream{f: f, name: name, ip: ip, dirs: fsys.DirOnce{}, cached: ^uint64(0)}
	if ip.format == fmtLocal {
		d, err := f.readDir(ip)
		if err != nil {
			return nil, &fs.PathError{Op: "opendir", Path: name, Err: err}
		}
		s.local = d.ents
		return s, nil
	}
	if s.ex, err = f.forkExtents(ip, false); err != nil {
		return nil, &fs.PathError{Op: "opendir", Path: name, Err: err}
	}
	s.buf = make([]byte, f.sb.dirBlkSize)
	return s, nil
}

type dirStream struct {
	f      *FS
	name   string
	ip     *inode
	local  []dirent // shortform directories: the sorted listing; the cookie is an index + 1
	ex     []extent
	buf    []byte // the directory block last read
	cached uint64 // its first file block, ^0 when none
	dirs   fsys.DirOnce
}

// nextDirBlock is the first mapped directory data block at or after file block db.
func (s *dirStream) nextDirBlock(db uint64) (uint64, bool) {
	sb := s.f.sb
	per := uint64(1) << sb.dirBlkLog
	leaf := uint64(dirLeafOffset) >> sb.blockLog
	db = db / per * per
	for db < leaf {
		i := findExtent(s.ex, db)
		if i == len(s.ex) {
			return 0, false
		}
		if e := s.ex[i]; e.off > db {
			db = e.off / per * per
			continue
		}
		return db, true
	}
	return 0, false
}

func (s *dirStream) ReadDirAt(cookie uint64, n int) ([]fsys.CookieEntry, error) {
	var out []fsys.CookieEntry
	add := func(e dirent, at, next uint64) {
		if e.ftype == 2 && !s.dirs.First(e.ino, at) {
			return
		}
		if s.f.linkedElsewhere(s.ip, e) {
			return
		}
		out = append(out, fsys.CookieEntry{DirEntry: &dirEntry{f: s.f, e: e}, Next: next})
	}
	if s.local != nil {
		fsys.IndexStream(len(s.local), cookie, n, func(i int) int {
			add(s.local[i], uint64(i), uint64(i)+1)
			return len(out)
		})
		return out, nil
	}
	sb := s.f.sb
	per := uint64(1) << sb.dirBlkLog
	db := cookie >> sb.blockLog / per * per
	within := cookie - db<<sb.blockLog
	for len(out) < n {
		next, ok := s.nextDirBlock(db)
		if !ok {
			break
		}
		if next != db {
			db, within = next, 0
		}
		if s.cached != db {
			s.cached = ^uint64(0)
			if err := s.f.readMapped(s.ex, s.buf, int64(db<<sb.blockLog)); err != nil {
				return out, &fs.PathError{Op: "readdir", Path: s.name, Err: err}
			}
			s.cached = db
		}
		var parent uint64
		base := db << sb.blockLog
		err := scanDataBlock(s.buf, sb, s.ip.ino, &parent, func(e dirent, start, end int) {
			if uint64(start) >= within && len(out) < n {
				add(e, base+uint64(start), base+uint64(end))
			}
		})
		if err != nil {
			return out, &fs.PathError{Op: "readdir", Path: s.name, Err: err}
		}
		db, within = db+per, 0
	}
	return out, nil
}

func (s *dirStream) Close() error { return nil }
