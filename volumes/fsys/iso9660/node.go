package iso9660

import (
	"fmt"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Defaults the kernel gives entries without Rock Ridge attributes: r-x for everyone, one link.
const (
	plainDirMode  = fsys.S_IFDIR | 0o555
	plainFileMode = fsys.S_IFREG | 0o555
)

// makeNode builds an entry from its directory record at byte position pos. hide reports an entry the
// kernel does not list (a Rock Ridge relocated directory in its relocation folder).
func (f *FS) makeNode(rec *record, pos int64) (n *node, hide bool, err error) {
	var rr *rockRidge
	if f.rock {
		if rr, err = f.parseSUSP(rec.system, f.skip); err != nil {
			return nil, false, err
		}
		if rr.relocated {
			return nil, true, nil
		}
	}
	n = &node{name: f.entryName(rec, rr)}
	if !validName(n.name) {
		return nil, false, fmt.Errorf("%w: entry name %q", ErrCorrupt, n.name)
	}
	attrs, attrRec := rr, rec
	if rr != nil && rr.hasCL {
		// The directory really lives elsewhere; its attributes are those of its own "." record there.
		if attrRec, attrs, err = f.relocated(rr.childLink); err != nil {
			return nil, false, fmt.Errorf("relocated directory %q: %w", n.name, err)
		}
	}
	if rec.flags&flagDirectory != 0 {
		// Linux numbers a directory by its own "." record (the start of its extent), not by the
		// record in its parent, so that every path to it agrees.
		pos = int64(rec.extent) * sectorSize
	}
	n.st = f.baseStat(attrRec, attrs, pos)
	switch {
	case n.isDir():
		n.dir = extent{block: attrRec.extent, size: attrRec.size}
		n.st.Size = int64(attrRec.size)
		n.st.AllocatedSize = allocated(n.st.Size)
	case n.st.Mode&fsys.S_IFMT == fsys.S_IFLNK:
		if attrs == nil || !attrs.hasTarget {
			return nil, false, fmt.Errorf("%w: symlink %q has no SL entry", ErrCorrupt, n.name)
		}
		n.target = attrs.target
		n.st.Size = int64(len(n.target))
	case n.st.Mode&fsys.S_IFMT == fsys.S_IFREG:
		n.extents = []extent{{block: rec.extent, size: rec.size}}
		n.st.Size = int64(rec.size)
		n.st.AllocatedSize = allocated(n.st.Size)
		if rr != nil && rr.zf != nil {
			// zisofs: the extent holds compressed blocks; the file shows its real size, as on Linux.
			if rr.zf.blockLog < 15 || rr.zf.blockLog > 17 || rr.zf.headerSize < 16 {
				return nil, false, fmt.Errorf("%w: zisofs file %q with block log %d, header %d",
					ErrCorrupt, n.name, rr.zf.blockLog, rr.zf.headerSize)
			}
			n.zf = rr.zf
			n.st.Size = int64(rr.zf.size)
		}
	}
	return n, false, nil
}

// relocated reads the "." record of a directory moved by Rock Ridge deep-directory relocation.
func (f *FS) relocated(block uint32) (*record, *rockRidge, error) {
	pos := int64(block) * sectorSize
	if pos+sectorSize > f.size {
		return nil, nil, fmt.Errorf("%w: child link to block %d outside the image", ErrCorrupt, block)
	}
	buf := make([]byte, sectorSize)
	if _, err := f.r.ReadAt(buf, pos); err != nil {
		return nil, nil, fmt.Errorf("iso9660: reading relocated directory: %w", err)
	}
	rec, err := parseRecord(buf)
	if err != nil {
		return nil, nil, err
	}
	if len(rec.id) != 1 || rec.id[0] != 0 || rec.flags&flagDirectory == 0 {
		return nil, nil, fmt.Errorf("%w: child link to block %d does not point at a directory", ErrCorrupt, block)
	}
	rr, err := f.parseSUSP(rec.system, f.skip)
	if err != nil {
		return nil, nil, err
	}
	if rr.hasCL {
		return nil, nil, fmt.Errorf("%w: relocated directory is itself relocated", ErrCorrupt)
	}
	return rec, rr, nil
}

// entryName picks the Rock Ridge name, else the Joliet name, else the mapped ISO9660 name.
func (f *FS) entryName(rec *record, rr *rockRidge) string {
	switch {
	case rr != nil && rr.hasName:
		return rr.name
	case f.joliet:
		return jolietName(rec.id)
	}
	return plainName(rec.id)
}

// baseStat fills the attributes that come from the record and its Rock Ridge entries.
func (f *FS) baseStat(rec *record, rr *rockRidge, pos int64) fsys.Stat {
	st := fsys.Stat{Ino: uint64(pos / 32), Nlink: 1, Mode: plainFileMode, Mtime: rec.time}
	if rec.flags&flagDirectory != 0 {
		st.Mode = plainDirMode
	}
	if rr == nil {
		return st
	}
	if rr.hasPX && validType(rr.mode) {
		st.Mode, st.Nlink, st.Uid, st.Gid = rr.mode&0o177777, rr.nlink, rr.uid, rr.gid
	}
	if rr.hasSerial && rr.serial != 0 {
		st.Ino = rr.serial
	}
	if t := st.Mode & fsys.S_IFMT; rr.hasPN && (t == fsys.S_IFCHR || t == fsys.S_IFBLK) {
		major, minor := uint64(rr.devHigh), uint64(rr.devLow)
		if rr.devHigh == 0 {
			// The whole dev_t in the low word. Linux decodes it as a 16-bit major<<8|minor, which
			// garbles numbers beyond 8 bits that writers such as xorriso store in the kernel's 32-bit
			// encoding; decode that encoding, which gives the same answer for 16-bit values.
			major = uint64(rr.devLow&0xfff00) >> 8
			minor = uint64(rr.devLow&0xff) | uint64(rr.devLow>>12)&0xfff00
		}
		st.Rdev = (major&0xfff)<<8 | (major&^0xfff)<<32 | minor&0xff | (minor&^0xff)<<12
	}
	// TF order: creation, modify, access, attributes.
	if rr.hasTime[1] {
		st.Mtime = rr.times[1]
	}
	if rr.hasTime[2] {
		st.Atime = rr.times[2]
	}
	switch {
	case rr.hasTime[3]:
		st.Ctime = rr.times[3]
	case rr.hasTime[0]:
		st.Ctime = rr.times[0]
	}
	if rr.hasTime[0] {
		st.Btime = rr.times[0]
	}
	return st
}

func validType(mode uint32) bool {
	switch mode & fsys.S_IFMT {
	case fsys.S_IFREG, fsys.S_IFDIR, fsys.S_IFLNK, fsys.S_IFCHR, fsys.S_IFBLK, fsys.S_IFIFO, fsys.S_IFSOCK:
		return true
	}
	return false
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}
