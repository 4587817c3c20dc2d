package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
)

const (
	xattrMagic       = 0xEA020000
	xattrBlockHeader = 32
	xattrEntryHeader = 16
	maxXattrValue    = 64 << 10 // the kernel's XATTR_SIZE_MAX
)

// xattrPrefixes maps e_name_index to the name prefix the kernel lists. Indexes it does not list
// (7: system.data of inline files, 8: richacl, 9: encryption context) are absent.
var xattrPrefixes = map[uint8]string{
	1:  "user.",
	2:  "system.posix_acl_access",
	3:  "system.posix_acl_default",
	4:  "trusted.",
	6:  "security.",
	10: "gnu.",
}

const (
	xattrIndexSystem = 7
	aclAccessIndex   = 2
	aclDefaultIndex  = 3
)

// rawXattr is one entry as stored: its name index, suffix and value.
type rawXattr struct {
	index uint8
	name  string
	value []byte
}

// parseXattrEntries decodes the entry list in region (entries start at first); value offsets count
// from valueBase. ea reads values kept in their own inode (ea_inode feature).
func parseXattrEntries(region []byte, first, valueBase int, ea func(ino uint32, size uint32) ([]byte, error)) ([]rawXattr, error) {
	le := binary.LittleEndian
	var out []rawXattr
	pos := first
	for {
		if pos+4 > len(region) {
			return nil, fmt.Errorf("xattr list runs past its area: %w", errCorrupt)
		}
		if le.Uint32(region[pos:]) == 0 {
			return out, nil
		}
		if pos+xattrEntryHeader > len(region) {
			return nil, fmt.Errorf("xattr entry at %d truncated: %w", pos, errCorrupt)
		}
		nameLen := int(region[pos])
		index := region[pos+1]
		valOff := int(le.Uint16(region[pos+2:]))
		valIno := le.Uint32(region[pos+4:])
		valSize := le.Uint32(region[pos+8:])
		end := pos + xattrEntryHeader + nameLen
		if end > len(region) {
			return nil, fmt.Errorf("xattr name at %d runs past its area: %w", pos, errCorrupt)
		}
		x := rawXattr{index: index, name: string(region[pos+xattrEntryHeader : end])}
		switch {
		case valSize > maxXattrValue:
			return nil, fmt.Errorf("xattr %q value of %d bytes: %w", x.name, valSize, errCorrupt)
		case valIno != 0:
			if ea == nil {
				return nil, fmt.Errorf("xattr %q kept in inode %d without ea_inode: %w", x.name, valIno, errCorrupt)
			}
			v, err := ea(valIno, valSize)
			if err != nil {
				return nil, fmt.Errorf("xattr %q: %w", x.name, err)
			}
			x.value = v
		default:
			s := valueBase + valOff
			if valOff+int(valSize) > len(region)-valueBase || s < 0 {
				return nil, fmt.Errorf("xattr %q value %d+%d outside its area: %w", x.name, valOff, valSize, errCorrupt)
			}
			x.value = region[s : s+int(valSize)]
		}
		out = append(out, x)
		pos = (end + 3) &^ 3
	}
}

// inodeXattrs returns the entries kept in the inode body after i_extra_isize.
func (f *FS) inodeXattrs(in *inode) ([]rawXattr, error) {
	if len(in.extra) < 4 || binary.LittleEndian.Uint32(in.extra) != xattrMagic {
		return nil, nil
	}
	x, err := parseXattrEntries(in.extra, 4, 4, f.eaInodeValue)
	if err != nil {
		return nil, fmt.Errorf("inode %d in-inode xattrs: %w", in.ino, err)
	}
	return x, nil
}

// blockXattrs returns the entries of the inode's external xattr block.
func (f *FS) blockXattrs(in *inode) ([]rawXattr, error) {
	if in.fileACL == 0 {
		return nil, nil
	}
	if err := f.checkRange(in.fileACL, 1); err != nil {
		return nil, fmt.Errorf("inode %d xattr block: %w", in.ino, err)
	}
	buf := make([]byte, f.sb.blockSize)
	if err := f.readBlock(buf, in.fileACL); err != nil {
		return nil, fmt.Errorf("inode %d xattr block: %w", in.ino, err)
	}
	le := binary.LittleEndian
	if m := le.Uint32(buf); m != xattrMagic {
		return nil, fmt.Errorf("inode %d xattr block %d has magic %#x: %w", in.ino, in.fileACL, m, errCorrupt)
	}
	if n := le.Uint32(buf[8:]); n != 1 {
		return nil, fmt.Errorf("inode %d xattr block spans %d blocks: %w", in.ino, n, errCorrupt)
	}
	x, err := parseXattrEntries(buf, xattrBlockHeader, 0, f.eaInodeValue)
	if err != nil {
		return nil, fmt.Errorf("inode %d xattr block: %w", in.ino, err)
	}
	return x, nil
}

// eaInodeValue reads a value stored as the data of its own inode.
func (f *FS) eaInodeValue(ino uint32, size uint32) ([]byte, error) {
	if !f.sb.has(incompatEAInode) {
		return nil, fmt.Errorf("value in inode %d but no ea_inode feature: %w", ino, errCorrupt)
	}
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	// An inline value inode would read its own xattrs to find its data: refuse it, as the kernel
	// never writes one, so hostile images cannot recurse.
	if in.flags&flagEAInode == 0 || in.flags&flagInlineData != 0 || in.st.Size != int64(size) {
		return nil, fmt.Errorf("inode %d is not a %d-byte xattr value inode: %w", ino, size, errCorrupt)
	}
	d, err := f.dataOf(in)
	if err != nil {
		return nil, err
	}
	v := make([]byte, size)
	if _, err := d.ReadAt(v, 0); err != nil && size > 0 {
		return nil, err
	}
	return v, nil
}

// inlineTail returns the part of an inline file or directory kept in the system.data attribute.
func (f *FS) inlineTail(in *inode) ([]byte, error) {
	xs, err := f.inodeXattrs(in)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		if x.index == xattrIndexSystem && x.name == "data" {
			return x.value, nil
		}
	}
	return nil, nil
}

// xattrs returns the attributes the kernel would list, by full name, with ACLs in the xattr format.
func (f *FS) xattrs(in *inode) (map[string][]byte, error) {
	body, err := f.inodeXattrs(in)
	if err != nil {
		return nil, err
	}
	blk, err := f.blockXattrs(in)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, x := range append(body, blk...) {
		prefix, ok := xattrPrefixes[x.index]
		if !ok {
			continue
		}
		v := x.value
		if x.index == aclAccessIndex || x.index == aclDefaultIndex {
			if x.name != "" {
				continue
			}
			if v, err = aclToXattr(v); err != nil {
				return nil, fmt.Errorf("inode %d %s: %w", in.ino, prefix, err)
			}
		}
		out[prefix+x.name] = v
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ACL tags whose entries carry an id on disk.
const (
	aclUser      = 0x02
	aclGroup     = 0x08
	aclUndefined = 0xFFFFFFFF
)

// aclToXattr converts ext4's compact ACL (version 1, 4-byte entries except named user/group) to the
// POSIX ACL xattr format getxattr returns (version 2, every entry 8 bytes).
func aclToXattr(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(b) < 4 || le.Uint32(b) != 1 {
		return nil, fmt.Errorf("ACL header invalid: %w", errCorrupt)
	}
	out := le.AppendUint32(nil, 2)
	for pos := 4; pos < len(b); {
		if pos+4 > len(b) {
			return nil, fmt.Errorf("ACL entry truncated: %w", errCorrupt)
		}
		tag, perm := le.Uint16(b[pos:]), le.Uint16(b[pos+2:])
		id := uint32(aclUndefined)
		switch tag {
		case aclUser, aclGroup:
			if pos+8 > len(b) {
				return nil, fmt.Errorf("ACL entry truncated: %w", errCorrupt)
			}
			id = le.Uint32(b[pos+4:])
			pos += 8
		case 0x01, 0x04, 0x10, 0x20:
			pos += 4
		default:
			return nil, fmt.Errorf("ACL tag %#x unknown: %w", tag, errCorrupt)
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, nil
}
