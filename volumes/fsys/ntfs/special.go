package ntfs

import (
	"bytes"
	"encoding/binary"
	"path"
	"strings"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Reparse tags presented as symlinks.
const (
	tagMountPoint = 0xA0000003
	tagSymlink    = 0xA000000C
	// Tags whose real data lives elsewhere (Windows CompactOS compression, Data Deduplication):
	// the unnamed $DATA underneath does not hold the file's bytes.
	tagWOF   = 0x80000017
	tagDedup = 0x80000013
)

// reparseTag returns the tag of an inode's reparse point, or 0.
func (f *FS) reparseTag(n *inode) uint32 {
	rp := n.find(attrReparsePoint, "")
	if rp == nil {
		return 0
	}
	v, err := f.attrValue(n.num, rp, 1<<16)
	if err != nil || len(v) < 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

// kind is how an inode appears to a Unix reader.
type kind struct {
	mode   uint32
	size   int64
	alloc  int64
	rdev   uint64
	target string // symlink target
}

// Interix special files, as ntfs-3g writes them: a SYSTEM-attributed file whose data starts with a
// magic (symlink target in UTF-16, or a device's 64-bit major and minor); empty data is a FIFO and a
// single byte a socket.
var (
	intxLink = []byte("IntxLNK\x01")
	intxChr  = []byte("IntxCHR\x00")
	intxBlk  = []byte("IntxBLK\x00")
)

const maxIntxSize = 8 + 2*4096 // ntfs-3g's bound: magic plus a PATH_MAX UTF-16 target

// classify works out the Unix type, size and allocation of an inode the way ntfs-3g does.
func (f *FS) classify(n *inode) (kind, error) {
	const perm = 0o777
	if rp := n.find(attrReparsePoint, ""); rp != nil {
		if target, ok, err := f.reparseTarget(n, rp); err != nil {
			return kind{}, err
		} else if ok {
			// The blocks are those of the entry's own data (directory index or $DATA).
			k := kind{mode: fsys.S_IFLNK | perm, size: int64(len(target)), target: target}
			if n.isDir() {
				k.alloc = dirAlloc(n)
			} else {
				k.alloc = dataAlloc(n.find(attrData, ""))
			}
			return k, nil
		}
	}
	if n.isDir() {
		k := kind{mode: fsys.S_IFDIR | perm, alloc: dirAlloc(n)}
		if a := n.find(attrIndexAlloc, "$I30"); a != nil {
			k.size = a.dataSize
		}
		return k, nil
	}
	k := kind{mode: fsys.S_IFREG | perm}
	data := n.find(attrData, "")
	if data != nil {
		k.size = data.dataSize
		k.alloc = dataAlloc(data)
	}
	// ntfs-3g never treats the metadata files (records below 16) as Interix special files.
	if n.fileAttrs&fileAttrSystem != 0 && n.fileAttrs&fileAttrEncrypted == 0 && data != nil && n.num >= recFirstUser {
		// Empty or one-byte files are FIFOs and sockets only when not also HIDDEN: Windows keeps
		// hidden system files of those sizes.
		switch {
		case data.dataSize == 0 && n.fileAttrs&fileAttrHidden == 0:
			k.mode = fsys.S_IFIFO | perm
		case data.dataSize == 1 && n.fileAttrs&fileAttrHidden == 0:
			k.mode = fsys.S_IFSOCK | perm
		case data.dataSize > 8 && data.dataSize <= maxIntxSize:
			v, err := f.attrValue(n.num, data, maxIntxSize)
			if err != nil {
				return kind{}, err
			}
			switch {
			case bytes.HasPrefix(v, intxLink) && len(v)%2 == 0:
				k.target = utf16Path(v[8:])
				k.mode, k.size = fsys.S_IFLNK|perm, int64(len(k.target))
			case len(v) == 24 && (bytes.HasPrefix(v, intxChr) || bytes.HasPrefix(v, intxBlk)):
				k.mode = fsys.S_IFCHR | perm
				if v[4] == 'B' {
					k.mode = fsys.S_IFBLK | perm
				}
				k.rdev = mkdev(binary.LittleEndian.Uint64(v[8:]), binary.LittleEndian.Uint64(v[16:]))
			}
		}
	}
	return k, nil
}

// dirAlloc is the allocation of a directory's index blocks.
func dirAlloc(n *inode) int64 {
	if a := n.find(attrIndexAlloc, "$I30"); a != nil {
		return a.allocSize
	}
	return 0
}

// dataAlloc is the allocation ntfs-3g reports for a data attribute: compressed or sparse ones count
// only their real clusters; resident values count their 8-byte-aligned length.
func dataAlloc(data *attribute) int64 {
	switch {
	case data == nil:
		return 0
	case data.resident:
		return roundAlloc((data.dataSize + 7) &^ 7)
	case data.flags&(attrFlagCompressed|attrFlagSparse) != 0:
		return roundAlloc(data.compSize)
	default:
		return roundAlloc(data.allocSize)
	}
}

// roundAlloc rounds an allocation up to whole 512-byte blocks, as st_blocks counts it.
func roundAlloc(n int64) int64 { return (n + 511) &^ 511 }

// mkdev encodes a device number the way Linux (glibc makedev) does.
func mkdev(major, minor uint64) uint64 {
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

func utf16Path(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

// reparseTarget decodes a symlink or junction reparse point into a Unix link target. Other tags
// report ok false: the entry is shown as the plain file or directory it is.
func (f *FS) reparseTarget(n *inode, rp *attribute) (string, bool, error) {
	v, err := f.attrValue(n.num, rp, 1<<16)
	if err != nil {
		return "", false, err
	}
	if len(v) < 8 {
		return "", false, nil
	}
	tag := binary.LittleEndian.Uint32(v)
	var hdr int
	switch tag {
	case tagSymlink:
		hdr = 20
	case tagMountPoint:
		hdr = 16
	default:
		return "", false, nil
	}
	if len(v) < hdr {
		return "", false, corrupt("MFT record %d: reparse point data truncated", n.num)
	}
	subOff := int(binary.LittleEndian.Uint16(v[8:]))
	subLen := int(binary.LittleEndian.Uint16(v[10:]))
	buf := v[hdr:]
	if subOff+subLen > len(buf) || subLen%2 != 0 {
		return "", false, corrupt("MFT record %d: reparse target outside the reparse data", n.num)
	}
	target := utf16Path(buf[subOff : subOff+subLen])
	relative := tag == tagSymlink && binary.LittleEndian.Uint32(v[16:])&1 != 0
	if relative {
		return strings.ReplaceAll(target, `\`, "/"), true, nil
	}
	return f.absoluteTarget(target, n.isDir()), true, nil
}

// absoluteTarget presents a Windows absolute target (\??\C:\dir\file) the way ntfs-3g does, with
// the volume root for its mount point: when the path exists on this volume (matched ignoring case,
// whatever the drive letter) and is a directory exactly when the link is, it becomes "/" plus the
// on-disk names; otherwise it is kept under ntfs-3g's "/.NTFS-3G/<drive>:/" prefix.
func (f *FS) absoluteTarget(target string, linkIsDir bool) string {
	t := strings.TrimPrefix(target, `\??\`)
	drive := ""
	if len(t) >= 2 && t[1] == ':' {
		drive, t = t[:2], t[2:]
	}
	rel := strings.Trim(strings.ReplaceAll(t, `\`, "/"), "/")
	if drive != "" {
		p := rel
		if p == "" {
			p = "."
		}
		if nd, err := f.walkCase("lookup", p, true); err == nil && nd.ino.isDir() == linkIsDir {
			return "/" + strings.TrimPrefix(path.Join(nd.dir, nd.name), ".")
		}
	}
	return path.Join("/.NTFS-3G", drive, rel)
}

// VolumeRooted reports whether name is a junction or an absolute Windows symlink, whose target
// names a path of this volume (fsys.VolumeLinker); Interix symlinks keep their Unix targets.
func (f *FS) VolumeRooted(name string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	nd, err := f.resolve("readlink", name, false)
	if err != nil {
		return false
	}
	rp := nd.ino.find(attrReparsePoint, "")
	if rp == nil {
		return false
	}
	v, err := f.attrValue(nd.ino.num, rp, 1<<16)
	if err != nil || len(v) < 20 {
		return false
	}
	switch binary.LittleEndian.Uint32(v) {
	case tagMountPoint:
		return true
	case tagSymlink:
		return binary.LittleEndian.Uint32(v[16:])&1 == 0
	}
	return false
}
