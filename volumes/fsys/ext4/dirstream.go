package ext4

import (
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var _ fsys.DirStreamer = (*FS)(nil)

// OpenDirStream lists a directory a batch at a time, in on-disk order, holding one block of it: a
// cookie is the byte offset in the directory of the next record, as the kernel's readdir position is.
// An inline directory (a few entries in the inode) is served from its sorted listing.
func (f *FS) OpenDirStream(name string) (fsys.DirStream, error) {
	in, err := f.lookup("opendir", name, false)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		return nil, pathErr("opendir", name, errNotDir)
	}
	if in.flags&flagEncrypt != 0 {
		return nil, pathErr("opendir", name, errEncrypted)
	}
	s := &dirStream{f: f, name: name, in: in, dirs: fsys.DirOnce{}, cached: -1}
	if in.flags&flagInlineData != 0 {
		d, err := f.directory(in)
		if err != nil {
			return nil, pathErr("opendir", name, err)
		}
		s.inline = d.entries
		return s, nil
	}
	if s.blocks, err = f.dirBlocksOf(in); err != nil {
		return nil, pathErr("opendir", name, err)
	}
	s.buf = make([]byte, f.sb.blockSize)
	return s, nil
}

type dirStream struct {
	f      *FS
	name   string
	in     *inode
	inline []dirent   // inline directories: the sorted listing; the cookie is an index + 1
	blocks *dirBlocks // block directories
	buf    []byte     // the block last read, logical block cached
	cached int64      // -1 when buf holds none
	dirs   fsys.DirOnce
	dmg    damageLog
}

func (s *dirStream) ReadDirAt(cookie uint64, n int) ([]fsys.CookieEntry, error) {
	var out []fsys.CookieEntry
	add := func(e dirent, at, next uint64) {
		if e.ftype == 2 && !s.dirs.First(uint64(e.ino), at) {
			return
		}
		if s.f.linkedElsewhere(s.in, e) {
			return
		}
		out = append(out, fsys.CookieEntry{DirEntry: &dirEntry{f: s.f, dir: s.name, ent: e}, Next: next})
	}
	if s.blocks == nil {
		fsys.IndexStream(len(s.inline), cookie, n, func(i int) int {
			add(s.inline[i], uint64(i), uint64(i)+1)
			return len(out)
		})
		return out, nil
	}
	bs := uint64(s.f.sb.blockSize)
	hasFT := s.f.sb.has(incompatFiletype)
	blk, within := cookie/bs, int(cookie%bs)
	for len(out) < n {
		logical, phys, _, ok := s.blocks.next(blk)
		if !ok {
			break
		}
		if logical != blk {
			blk, within = logical, 0
		}
		if s.cached != int64(blk) {
			s.cached = -1
			if err := s.f.readBlock(s.buf, phys); err != nil {
				return out, pathErr("readdir", s.name, err)
			}
			s.cached = int64(blk)
		}
		var parent uint32 // "." and ".." are not listed; a ".." past block 0 is still damage
		if blk != 0 {
			parent = 1
		}
		scanDirBlock(s.buf, hasFT, s.f.sb.blockSize, s.f.sb.inodesCount, &parent, s.dmg.at(int64(blk)), func(e dirent, start, end int) {
			if start >= within && len(out) < n {
				add(e, blk*bs+uint64(start), blk*bs+uint64(end))
			}
		})
		blk, within = blk+1, 0
		if len(out) >= n {
			break
		}
	}
	return out, nil
}

func (s *dirStream) Close() error {
	s.dmg.done()
	return nil
}
