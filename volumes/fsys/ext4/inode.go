package ext4

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Inode flags (i_flags) this reader acts on.
const (
	flagIndex      = 0x1000
	flagHugeFile   = 0x40000
	flagExtents    = 0x80000
	flagEAInode    = 0x200000
	flagInlineData = 0x10000000
)

const (
	goodOldInodeSize = 128
	fullInodeSize    = 160 // sizeof(struct ext4_inode)
)

// inode is a decoded on-disk inode. raw keeps the bytes past the 128-byte base for in-inode xattrs.
type inode struct {
	ino     uint32
	st      fsys.Stat
	flags   uint32
	block   [60]byte // i_block: block map, extent root, inline data or fast symlink target
	fileACL uint64   // block of the external xattr block, 0 if none
	extra   []byte   // the in-inode xattr area (after i_extra_isize), nil if none
}

func (in *inode) typ() uint32 { return in.st.Mode & fsys.S_IFMT }
func (in *inode) isDir() bool { return in.typ() == fsys.S_IFDIR }

// parseInode decodes one inode record of sb.inodeSize bytes.
func parseInode(sb *superblock, ino uint32, b []byte) (*inode, error) {
	if len(b) < goodOldInodeSize {
		return nil, fmt.Errorf("inode %d: record truncated to %d bytes", ino, len(b))
	}
	le := binary.LittleEndian
	in := &inode{ino: ino}
	mode := le.Uint16(b[0:])
	in.st.Ino = uint64(ino)
	in.st.Mode = uint32(mode)
	in.st.Uid = uint32(le.Uint16(b[2:])) | uint32(le.Uint16(b[120:]))<<16
	in.st.Gid = uint32(le.Uint16(b[24:])) | uint32(le.Uint16(b[122:]))<<16
	in.st.Nlink = uint32(le.Uint16(b[26:]))
	in.flags = le.Uint32(b[32:])
	copy(in.block[:], b[40:100])
	in.fileACL = uint64(le.Uint32(b[104:])) | uint64(le.Uint16(b[118:]))<<32
	size := uint64(le.Uint32(b[4:]))
	if in.typ() == fsys.S_IFREG || sb.has(incompatLargeDir) {
		size |= uint64(le.Uint32(b[108:])) << 32
	}
	if max := sb.maxFileSize(in.flags&flagExtents != 0); size > max {
		// The kernel's iget refuses it the same way ("bad i_size value"): a file that size could not
		// be addressed, and serving it would make a reader of the tree read forever.
		return nil, fmt.Errorf("inode %d: bad i_size %d, past the %d bytes its block mapping can address", ino, size, max)
	}
	in.st.Size = int64(size)

	blocks := uint64(le.Uint32(b[28:]))
	if sb.roCompat&roCompatHugeFile != 0 {
		blocks |= uint64(le.Uint16(b[116:])) << 32
		if in.flags&flagHugeFile != 0 {
			blocks *= uint64(sb.blockSize / 512)
		}
	}
	in.st.AllocatedSize = int64(blocks * 512)
	if in.flags&flagInlineData != 0 && in.typ() == fsys.S_IFREG {
		// Like the kernel's stat, count inline bytes as sectors so the file does not look sparse.
		in.st.AllocatedSize += (in.st.Size + 511) &^ 511
	}

	// Fields past 128 bytes exist only as far as i_extra_isize says.
	extraEnd := goodOldInodeSize
	if sb.inodeSize > goodOldInodeSize && len(b) >= 130 {
		isize := int(le.Uint16(b[128:]))
		if isize&3 != 0 || goodOldInodeSize+isize > len(b) {
			return nil, fmt.Errorf("inode %d: i_extra_isize %d invalid", ino, isize)
		}
		extraEnd = goodOldInodeSize + isize
		in.extra = b[extraEnd:]
		if isize == 0 {
			// The kernel then treats the whole 160-byte ext4_inode as present (its extra time fields
			// read as stored, usually zero) and looks for no in-inode xattrs.
			extraEnd = min(fullInodeSize, len(b))
			in.extra = nil
		}
	}
	fits := func(off int) bool { return off+4 <= extraEnd }
	xtime := func(base, extraOff int) time.Time {
		sec := int64(int32(le.Uint32(b[base:])))
		var nsec int64
		if fits(extraOff) {
			x := le.Uint32(b[extraOff:])
			sec += int64(x&3) << 32
			nsec = int64(x >> 2)
			if nsec > 999999999 {
				nsec = 999999999 // the kernel clamps too
			}
		}
		return time.Unix(sec, nsec).UTC()
	}
	in.st.Atime = xtime(8, 140)
	in.st.Ctime = xtime(12, 132)
	in.st.Mtime = xtime(16, 136)
	if fits(144) {
		in.st.Btime = xtime(144, 148)
	}
	if t := in.typ(); t == fsys.S_IFCHR || t == fsys.S_IFBLK {
		in.st.Rdev = decodeDev(in.block[:])
	}
	return in, nil
}

// decodeDev reads a device number from i_block: the old 16-bit encoding in word 0, else the new one
// in word 1, and returns it as the Linux st_rdev encoding.
func decodeDev(blk []byte) uint64 {
	le := binary.LittleEndian
	var major, minor uint32
	if old := le.Uint32(blk[0:]); old != 0 {
		major, minor = (old>>8)&0xff, old&0xff
	} else {
		d := le.Uint32(blk[4:])
		major = (d & 0xfff00) >> 8
		minor = (d & 0xff) | ((d >> 12) & 0xfff00)
	}
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}
