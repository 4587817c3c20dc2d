package squashfs

import (
	"fmt"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Inode types; the extended form of each is the basic one plus 7.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFifo    = 6
	typeSocket  = 7
	extOffset   = 7
)

const noIndex = ^uint32(0)

// inode is a decoded squashfs inode with the fields every type may carry.
type inode struct {
	typ     uint16 // basic type (1..7), even for extended inodes
	mode    uint16 // permission and setuid/setgid/sticky bits
	uid     uint32
	gid     uint32
	mtime   uint32
	number  uint32
	nlink   uint32
	size    uint64
	xattr   uint32 // xattr id, noIndex when none
	xattrSz uint32 // bytes of its key/value pairs, which the kernel counts as allocated
	rdev    uint32 // squashfs (Linux new_encode_dev) device number
	target  string // symlink target
	sparse  uint64 // bytes of holes, extended files only
	dirBlk  uint32 // directory listing: metadata block offset from the directory table
	dirOff  uint16 // and offset inside it
	parent  uint32 // parent inode number, directories only
	idxCnt  uint16 // directory index entries (extended directories)
	start   uint64 // first data block on disk (files)
	frag    uint32 // fragment index, noIndex when the tail is a full block
	fragOff uint32 // offset of the tail inside the fragment block
	blocks  []uint32
}

// inodeAt decodes the inode referenced by ref (block offset from the inode table << 16 | offset).
func (f *FS) inodeAt(ref uint64) (*inode, error) {
	blk, off := int64(ref>>16), int(ref&0xffff)
	if off >= metaBlockSize || blk > f.end {
		return nil, fmt.Errorf("%w: inode reference %#x", ErrCorrupt, ref)
	}
	m := &metaReader{f: f, pos: metaPos{block: int64(f.sb.inodeTableStart) + blk, offset: off}}
	in, err := f.decodeInode(m)
	if err != nil {
		return nil, fmt.Errorf("inode %#x: %w", ref, err)
	}
	return in, nil
}

func (f *FS) decodeInode(m *metaReader) (*inode, error) {
	rawType := m.u16()
	in := &inode{mode: m.u16(), xattr: noIndex, frag: noIndex, nlink: 1}
	uidIdx, gidIdx := m.u16(), m.u16()
	in.mtime, in.number = m.u32(), m.u32()
	if m.err != nil {
		return nil, m.err
	}
	if rawType < typeDir || rawType > typeSocket+extOffset {
		return nil, fmt.Errorf("%w: inode type %d", ErrCorrupt, rawType)
	}
	in.typ = rawType
	ext := rawType > typeSocket
	if ext {
		in.typ -= extOffset
	}
	var err error
	if in.uid, err = f.id(uidIdx); err != nil {
		return nil, err
	}
	if in.gid, err = f.id(gidIdx); err != nil {
		return nil, err
	}
	switch {
	case in.typ == typeDir && !ext:
		in.dirBlk, in.nlink = m.u32(), m.u32()
		in.size, in.dirOff, in.parent = uint64(m.u16()), m.u16(), m.u32()
	case in.typ == typeDir:
		in.nlink, in.size, in.dirBlk, in.parent = m.u32(), uint64(m.u32()), m.u32(), m.u32()
		in.idxCnt, in.dirOff, in.xattr = m.u16(), m.u16(), m.u32()
	case in.typ == typeFile && !ext:
		in.start, in.frag, in.fragOff, in.size = uint64(m.u32()), m.u32(), m.u32(), uint64(m.u32())
	case in.typ == typeFile:
		in.start, in.size, in.sparse = m.u64(), m.u64(), m.u64()
		in.nlink, in.frag, in.fragOff, in.xattr = m.u32(), m.u32(), m.u32(), m.u32()
	case in.typ == typeSymlink:
		in.nlink = m.u32()
		n := m.u32()
		if n > 4096 || m.err != nil {
			return nil, fmt.Errorf("%w: symlink target length %d", ErrCorrupt, n)
		}
		in.target = string(m.bytes(int(n)))
		in.size = uint64(n)
		if ext {
			in.xattr = m.u32()
		}
	case in.typ == typeBlock || in.typ == typeChar:
		in.nlink, in.rdev = m.u32(), m.u32()
		if ext {
			in.xattr = m.u32()
		}
	default: // fifo, socket
		in.nlink = m.u32()
		if ext {
			in.xattr = m.u32()
		}
	}
	if m.err != nil {
		return nil, m.err
	}
	if in.typ == typeFile {
		if err := f.readBlockList(m, in); err != nil {
			return nil, err
		}
	}
	if in.xattr != noIndex {
		id, err := f.xattrID(in.xattr)
		if err != nil {
			return nil, err
		}
		in.xattrSz = id.size
	}
	return in, nil
}

// readBlockList reads the per-block on-disk sizes that follow a file inode.
func (f *FS) readBlockList(m *metaReader, in *inode) error {
	bs := uint64(f.sb.blockSize)
	n := in.size / bs
	if in.frag == noIndex && in.size%bs != 0 {
		n++
	}
	// Each entry takes 4 bytes of metadata; metadata cannot expand by more than 8192/3 per disk byte.
	if n*4/metaBlockSize*3 > uint64(f.end) {
		return fmt.Errorf("%w: file of %d bytes needs more block entries than the image can hold", ErrCorrupt, in.size)
	}
	raw := m.bytes(int(n) * 4)
	if m.err != nil {
		return m.err
	}
	in.blocks = make([]uint32, n)
	for i := range in.blocks {
		in.blocks[i] = uint32(raw[i*4]) | uint32(raw[i*4+1])<<8 | uint32(raw[i*4+2])<<16 | uint32(raw[i*4+3])<<24
	}
	return nil
}

// id maps an id-table index to a uid or gid.
func (f *FS) id(idx uint16) (uint32, error) {
	if int(idx) >= len(f.ids) {
		return 0, fmt.Errorf("%w: id index %d of %d", ErrCorrupt, idx, len(f.ids))
	}
	return f.ids[idx], nil
}

var typeBits = [...]uint32{
	typeDir: fsys.S_IFDIR, typeFile: fsys.S_IFREG, typeSymlink: fsys.S_IFLNK, typeBlock: fsys.S_IFBLK,
	typeChar: fsys.S_IFCHR, typeFifo: fsys.S_IFIFO, typeSocket: fsys.S_IFSOCK,
}

// stat fills an fsys.Stat the way the Linux kernel presents this inode.
func (f *FS) stat(in *inode) fsys.Stat {
	st := fsys.Stat{
		Ino:   uint64(in.number),
		Nlink: in.nlink,
		Mode:  typeBits[in.typ] | uint32(in.mode&0o7777),
		Uid:   in.uid,
		Gid:   in.gid,
		Size:  int64(in.size),
		Mtime: time.Unix(int64(in.mtime), 0),
	}
	if in.typ == typeBlock || in.typ == typeChar {
		// squashfs stores new_encode_dev(); re-encode the major/minor pair as unix.Mkdev does.
		major := uint64(in.rdev&0xfff00) >> 8
		minor := uint64(in.rdev&0xff) | uint64(in.rdev>>12)&0xfff00
		st.Rdev = (major&0xfff)<<8 | (major&^0xfff)<<32 | minor&0xff | (minor&^0xff)<<12
	}
	if in.typ == typeFile {
		st.AllocatedSize = (int64(in.size-min(in.sparse, in.size)) + 511) &^ 511
	}
	if in.xattrSz > 0 {
		st.AllocatedSize += (int64(in.xattrSz) + 511) &^ 511
	}
	return st
}
