package xfs

import (
	"fmt"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Data/attr fork formats (di_format, di_aformat).
const (
	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3
)

const (
	inodeCoreV2    = 100 // v1/v2 core plus di_next_unlinked: where the data fork starts
	inodeCoreV3    = 176
	inodeCRCOff    = 100
	diflagRealtime = 0x1
	diflagPrealloc = 0x2
	diflagAppend   = 0x10
	diflag2Bigtime = 0x8
	diflag2Nrext64 = 0x10
	// bigtime counts nanoseconds from the smallest 32-bit Unix time.
	bigtimeEpochOffset = 1 << 31
)

// inode is a decoded inode core with copies of its two fork areas.
type inode struct {
	ino       uint64
	mode      uint32
	version   uint8
	format    uint8
	aformat   uint8
	uid, gid  uint32
	nlink     uint32
	size      int64
	nblocks   uint64
	nextents  uint64
	anextents uint64
	flags     uint16
	flags2    uint64
	rdev      uint64
	atime     time.Time
	mtime     time.Time
	ctime     time.Time
	btime     time.Time
	dfork     []byte // literal area of the data fork
	afork     []byte // literal area of the attribute fork; nil when there is none
}

func (ip *inode) isDir() bool     { return ip.mode&fsys.S_IFMT == fsys.S_IFDIR }
func (ip *inode) isReg() bool     { return ip.mode&fsys.S_IFMT == fsys.S_IFREG }
func (ip *inode) isSymlink() bool { return ip.mode&fsys.S_IFMT == fsys.S_IFLNK }

// parseInode decodes one on-disk inode of sb.inodeSize bytes that should be number ino.
func parseInode(sb *superblock, ino uint64, b []byte) (*inode, error) {
	if len(b) < int(sb.inodeSize) {
		return nil, corruptf("inode %d: short buffer", ino)
	}
	b = b[:sb.inodeSize]
	if b[0] != 'I' || b[1] != 'N' {
		return nil, corruptf("inode %d: bad magic %q", ino, b[0:2])
	}
	ip := &inode{
		ino:     ino,
		mode:    uint32(be.Uint16(b[2:])),
		version: b[4],
		format:  b[5],
		uid:     be.Uint32(b[8:]),
		gid:     be.Uint32(b[12:]),
		size:    int64(be.Uint64(b[56:])),
		nblocks: be.Uint64(b[64:]),
		aformat: b[83],
		flags:   be.Uint16(b[90:]),
	}
	core := inodeCoreV2
	switch ip.version {
	case 1:
		ip.nlink = uint32(be.Uint16(b[6:]))
	case 2:
		ip.nlink = be.Uint32(b[16:])
	case 3:
		if !sb.crc {
			return nil, corruptf("inode %d: v3 inode on a v4 volume", ino)
		}
		ip.nlink = be.Uint32(b[16:])
		core = inodeCoreV3
		if !crcOK(b, inodeCRCOff) {
			return nil, corruptf("inode %d: checksum mismatch", ino)
		}
		if self := be.Uint64(b[152:]); self != ino {
			return nil, corruptf("inode %d: records itself as inode %d", ino, self)
		}
		ip.flags2 = be.Uint64(b[120:])
	default:
		return nil, corruptf("inode %d: version %d", ino, ip.version)
	}
	if sb.crc && ip.version != 3 {
		return nil, corruptf("inode %d: v%d inode on a v5 volume", ino, ip.version)
	}
	if ip.mode == 0 {
		return nil, corruptf("inode %d: not in use", ino)
	}
	if ip.flags2&diflag2Nrext64 != 0 {
		ip.nextents = be.Uint64(b[24:])
		ip.anextents = uint64(be.Uint32(b[76:]))
	} else {
		ip.nextents = uint64(be.Uint32(b[76:]))
		ip.anextents = uint64(be.Uint16(b[80:]))
	}
	bigtime := ip.flags2&diflag2Bigtime != 0
	ip.atime = decodeTime(b[32:], bigtime)
	ip.mtime = decodeTime(b[40:], bigtime)
	ip.ctime = decodeTime(b[48:], bigtime)
	if ip.version == 3 {
		ip.btime = decodeTime(b[144:], bigtime)
	}
	if ip.size < 0 {
		return nil, corruptf("inode %d: negative size", ino)
	}
	if err := ip.splitForks(sb, b, core); err != nil {
		return nil, err
	}
	return ip, ip.checkFormat(sb)
}

func (ip *inode) splitForks(sb *superblock, b []byte, core int) error {
	lit := b[core:]
	forkOff := int(b[82]) * 8
	if forkOff == 0 {
		ip.dfork = append([]byte(nil), lit...)
		return nil
	}
	if forkOff >= len(lit) {
		return corruptf("inode %d: attribute fork offset %d beyond %d-byte literal area", ip.ino, forkOff, len(lit))
	}
	ip.dfork = append([]byte(nil), lit[:forkOff]...)
	ip.afork = append([]byte(nil), lit[forkOff:]...)
	return nil
}

// checkFormat rejects fork formats that make no sense for the file type, before anyone reads them.
func (ip *inode) checkFormat(sb *superblock) error {
	maxExtents := sb.dblocks
	if ip.nextents > maxExtents || ip.anextents > maxExtents {
		return corruptf("inode %d: %d/%d extents on a %d-block volume", ip.ino, ip.nextents, ip.anextents, sb.dblocks)
	}
	ok := false
	switch ip.mode & fsys.S_IFMT {
	case fsys.S_IFDIR:
		ok = ip.format == fmtLocal || ip.format == fmtExtents || ip.format == fmtBtree
	case fsys.S_IFREG:
		ok = ip.format == fmtExtents || ip.format == fmtBtree || (ip.format == fmtLocal && ip.size <= int64(len(ip.dfork)))
	case fsys.S_IFLNK:
		ok = ip.format == fmtLocal || ip.format == fmtExtents || ip.format == fmtBtree
	case fsys.S_IFCHR, fsys.S_IFBLK, fsys.S_IFIFO, fsys.S_IFSOCK:
		ok = ip.format == fmtDev
		if ok && (ip.mode&fsys.S_IFMT == fsys.S_IFCHR || ip.mode&fsys.S_IFMT == fsys.S_IFBLK) {
			if len(ip.dfork) < 4 {
				return corruptf("inode %d: device number does not fit", ip.ino)
			}
			ip.rdev = decodeDev(be.Uint32(ip.dfork))
		}
	default:
		return corruptf("inode %d: file type %#o", ip.ino, ip.mode&fsys.S_IFMT)
	}
	if !ok {
		return corruptf("inode %d: data fork format %d for mode %#o", ip.ino, ip.format, ip.mode)
	}
	if ip.format == fmtLocal && ip.size > int64(len(ip.dfork)) {
		return corruptf("inode %d: inline size %d exceeds %d-byte fork", ip.ino, ip.size, len(ip.dfork))
	}
	if ip.afork != nil && ip.aformat != fmtLocal && ip.aformat != fmtExtents && ip.aformat != fmtBtree {
		return corruptf("inode %d: attribute fork format %d", ip.ino, ip.aformat)
	}
	return nil
}

func decodeTime(b []byte, bigtime bool) time.Time {
	if bigtime {
		ns := be.Uint64(b)
		return time.Unix(int64(ns/1e9)-bigtimeEpochOffset, int64(ns%1e9)).UTC()
	}
	return time.Unix(int64(int32(be.Uint32(b))), int64(be.Uint32(b[4:]))).UTC()
}

// decodeDev turns XFS's 32-bit device number (14-bit major, 18-bit minor) into the Linux st_rdev encoding.
func decodeDev(d uint32) uint64 {
	major := uint64(d>>18) & 0x3fff
	minor := uint64(d & 0x3ffff)
	return (major&0xfffff000)<<32 | (major&0xfff)<<8 | (minor&0xffffff00)<<12 | minor&0xff
}

func (ip *inode) stat(sb *superblock) fsys.Stat {
	return fsys.Stat{
		Ino:           ip.ino,
		Nlink:         ip.nlink,
		Mode:          ip.mode,
		Uid:           ip.uid,
		Gid:           ip.gid,
		Rdev:          ip.rdev,
		Size:          ip.size,
		AllocatedSize: int64(ip.nblocks << sb.blockLog),
		Atime:         ip.atime,
		Mtime:         ip.mtime,
		Ctime:         ip.ctime,
		Btime:         ip.btime,
	}
}

func (ip *inode) String() string { return fmt.Sprintf("inode %d", ip.ino) }
