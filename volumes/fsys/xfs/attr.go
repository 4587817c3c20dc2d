package xfs

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Attribute entry flags (namespace and state).
const (
	attrLocal      = 0x01
	attrRoot       = 0x02 // trusted.*
	attrSecure     = 0x04 // security.*
	attrParent     = 0x08 // parent pointers: internal, never listed
	attrIncomplete = 0x80

	attrLeafMagicV4 = 0xfbee
	attrLeafMagicV5 = 0x3bee
	daNodeMagicV4   = 0xfebe
	daNodeMagicV5   = 0x3ebe
	attrLeafHdrV4   = 32
	attrLeafHdrV5   = 80
	daNodeHdrV4     = 16
	daNodeHdrV5     = 64
	daCRCOff        = 12
	daOwnerOff      = 48
	remoteHdrSize   = 56
	remoteCRCOff    = 12
	maxAttrValue    = 64 << 10
	maxDaDepth      = 8
)

// xattr is one attribute: its Linux name and, for remote values, where the value lives.
type xattr struct {
	name     string
	value    []byte // local values
	remote   bool
	valueBlk uint32 // first attr-fork block of a remote value
	valueLen uint32
}

// listAttrs returns every visible attribute of ip, sorted by name (remote values not yet read).
func (f *FS) listAttrs(ip *inode) ([]xattr, error) {
	if ip.afork == nil {
		return nil, nil
	}
	var attrs []xattr
	var err error
	switch ip.aformat {
	case fmtLocal:
		attrs, err = parseShortformAttrs(ip.afork)
	case fmtExtents, fmtBtree:
		if ip.anextents == 0 && ip.aformat == fmtExtents {
			return nil, nil
		}
		attrs, err = f.attrLeaves(ip)
	default:
		err = corruptf("attribute fork format %d", ip.aformat)
	}
	if err != nil {
		return nil, fmt.Errorf("attributes of %v: %w", ip, err)
	}
	// POSIX ACLs live as trusted.SGI_ACL_*; Linux lists them under that raw name and also, converted,
	// under the system.posix_acl_* names.
	for _, a := range attrs {
		if sys, ok := aclNames[a.name]; ok {
			a.name = sys
			attrs = append(attrs, a)
		}
	}
	sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].name < attrs[j].name })
	return attrs, nil
}

var aclNames = map[string]string{
	"trusted.SGI_ACL_FILE":    "system.posix_acl_access",
	"trusted.SGI_ACL_DEFAULT": "system.posix_acl_default",
}

// attrName maps an on-disk namespace and name to the name Linux shows; ok=false hides the entry.
func attrName(flags uint8, name []byte) (string, bool) {
	if flags&(attrIncomplete|attrParent) != 0 {
		return "", false
	}
	switch {
	case flags&attrRoot != 0:
		return "trusted." + string(name), true
	case flags&attrSecure != 0:
		return "security." + string(name), true
	}
	return "user." + string(name), true
}

func parseShortformAttrs(b []byte) ([]xattr, error) {
	if len(b) < 4 {
		return nil, corruptf("shortform attribute header truncated")
	}
	total := int(be.Uint16(b))
	if total < 4 || total > len(b) {
		return nil, corruptf("shortform attributes claim %d bytes of %d", total, len(b))
	}
	count := int(b[2])
	b = b[:total]
	var out []xattr
	pos := 4
	for i := 0; i < count; i++ {
		if pos+3 > len(b) {
			return nil, corruptf("shortform attribute %d truncated", i)
		}
		nameLen, valLen, flags := int(b[pos]), int(b[pos+1]), b[pos+2]
		pos += 3
		if nameLen == 0 || pos+nameLen+valLen > len(b) {
			return nil, corruptf("shortform attribute %d overruns", i)
		}
		name := b[pos : pos+nameLen]
		val := b[pos+nameLen : pos+nameLen+valLen]
		pos += nameLen + valLen
		if n, ok := attrName(flags, name); ok {
			out = append(out, xattr{name: n, value: append([]byte{}, val...)})
		}
	}
	return out, nil
}

// attrBlock reads one block of the attribute fork (attribute blocks are one filesystem block).
func (f *FS) attrBlock(ip *inode, ex []extent, blk uint64) ([]byte, error) {
	b := make([]byte, f.sb.blockSize)
	i := findExtent(ex, blk)
	if i == len(ex) || ex[i].off > blk || ex[i].unwritten {
		return nil, corruptf("attribute block %d is not mapped", blk)
	}
	return b, f.readMapped(ex, b, int64(blk<<f.sb.blockLog))
}

// attrLeaves walks an attribute btree from block 0 down its first children, then along the leaves.
func (f *FS) attrLeaves(ip *inode) ([]xattr, error) {
	ex, err := f.forkExtents(ip, true)
	if err != nil {
		return nil, err
	}
	blk := uint64(0)
	var b []byte
	for depth := 0; ; depth++ {
		if depth > maxDaDepth {
			return nil, corruptf("attribute btree deeper than %d", maxDaDepth)
		}
		if b, err = f.attrBlock(ip, ex, blk); err != nil {
			return nil, err
		}
		magic := be.Uint16(b[8:])
		if magic != daNodeMagicV4 && magic != daNodeMagicV5 {
			break
		}
		child, err := parseDaNodeFirst(b, f.sb, ip.ino)
		if err != nil {
			return nil, fmt.Errorf("attribute node block %d: %w", blk, err)
		}
		blk = uint64(child)
	}
	var out []xattr
	seen := map[uint64]bool{}
	for {
		if seen[blk] || uint64(len(seen)) > ip.nblocks+1 {
			return nil, corruptf("attribute leaf chain loops at block %d", blk)
		}
		seen[blk] = true
		var forw uint32
		out, forw, err = parseAttrLeaf(b, f.sb, ip.ino, out)
		if err != nil {
			return nil, fmt.Errorf("attribute leaf block %d: %w", blk, err)
		}
		if forw == 0 {
			return out, nil
		}
		blk = uint64(forw)
		if b, err = f.attrBlock(ip, ex, blk); err != nil {
			return nil, err
		}
	}
}

// checkDaBlock checks the magic, and on v5 the CRC and owner, of a dir/attr btree block.
func checkDaBlock(b []byte, sb *superblock, owner uint64, v4, v5 uint16) error {
	want := v4
	if sb.crc {
		want = v5
	}
	if len(b) < attrLeafHdrV5 || be.Uint16(b[8:]) != want {
		return corruptf("magic %#x, expected %#x", be.Uint16(b[8:min(10, len(b))]), want)
	}
	if sb.crc {
		if !crcOK(b, daCRCOff) {
			return corruptf("checksum mismatch")
		}
		if got := be.Uint64(b[daOwnerOff:]); got != owner {
			return corruptf("block owned by inode %d", got)
		}
	}
	return nil
}

// parseDaNodeFirst returns the first child of a dir/attr btree node block.
func parseDaNodeFirst(b []byte, sb *superblock, owner uint64) (uint32, error) {
	if err := checkDaBlock(b, sb, owner, daNodeMagicV4, daNodeMagicV5); err != nil {
		return 0, err
	}
	hdr := daNodeHdrV4
	if sb.crc {
		hdr = daNodeHdrV5
	}
	count := int(be.Uint16(b[hdr-4:]))
	if sb.crc {
		count = int(be.Uint16(b[56:]))
	}
	if count == 0 || hdr+count*8 > len(b) {
		return 0, corruptf("node with %d entries", count)
	}
	return be.Uint32(b[hdr+4:]), nil
}

// parseAttrLeaf appends the attributes of one leaf block and returns its forward sibling.
func parseAttrLeaf(b []byte, sb *superblock, owner uint64, out []xattr) ([]xattr, uint32, error) {
	if err := checkDaBlock(b, sb, owner, attrLeafMagicV4, attrLeafMagicV5); err != nil {
		return nil, 0, err
	}
	hdr, countOff := attrLeafHdrV4, 12
	if sb.crc {
		hdr, countOff = attrLeafHdrV5, 56
	}
	count := int(be.Uint16(b[countOff:]))
	if hdr+count*8 > len(b) {
		return nil, 0, corruptf("leaf with %d entries", count)
	}
	for i := 0; i < count; i++ {
		ent := b[hdr+i*8:]
		idx, flags := int(be.Uint16(ent[4:])), ent[6]
		if idx < hdr+count*8 || idx >= len(b) {
			return nil, 0, corruptf("entry %d name at %d", i, idx)
		}
		a, name, err := parseAttrLeafName(b[idx:], flags)
		if err != nil {
			return nil, 0, fmt.Errorf("entry %d: %w", i, err)
		}
		if n, ok := attrName(flags, name); ok {
			a.name = n
			out = append(out, a)
		}
	}
	return out, be.Uint32(b), nil
}

func parseAttrLeafName(b []byte, flags uint8) (xattr, []byte, error) {
	if flags&attrLocal != 0 {
		if len(b) < 3 {
			return xattr{}, nil, corruptf("local name truncated")
		}
		valLen, nameLen := int(be.Uint16(b)), int(b[2])
		if nameLen == 0 || 3+nameLen+valLen > len(b) {
			return xattr{}, nil, corruptf("local name/value overruns the block")
		}
		return xattr{value: append([]byte{}, b[3+nameLen:3+nameLen+valLen]...)}, b[3 : 3+nameLen], nil
	}
	if len(b) < 9 {
		return xattr{}, nil, corruptf("remote name truncated")
	}
	blk, valLen, nameLen := be.Uint32(b), be.Uint32(b[4:]), int(b[8])
	if nameLen == 0 || 9+nameLen > len(b) || valLen > maxAttrValue {
		return xattr{}, nil, corruptf("remote name of %d bytes, value of %d", nameLen, valLen)
	}
	return xattr{remote: true, valueBlk: blk, valueLen: valLen}, b[9 : 9+nameLen], nil
}

// attrValue returns an attribute's value, reading remote value blocks when needed.
func (f *FS) attrValue(ip *inode, a xattr) ([]byte, error) {
	val := a.value
	if a.remote {
		var err error
		if val, err = f.remoteValue(ip, a); err != nil {
			return nil, fmt.Errorf("attribute %s of %v: %w", a.name, ip, err)
		}
	}
	if a.name == "system.posix_acl_access" || a.name == "system.posix_acl_default" {
		return aclToXattr(val)
	}
	return val, nil
}

func (f *FS) remoteValue(ip *inode, a xattr) ([]byte, error) {
	ex, err := f.forkExtents(ip, true)
	if err != nil {
		return nil, err
	}
	sb := f.sb
	per := sb.blockSize
	if sb.crc {
		per -= remoteHdrSize
	}
	val := make([]byte, 0, a.valueLen)
	for blk := uint64(a.valueBlk); uint32(len(val)) < a.valueLen; blk++ {
		b, err := f.attrBlock(ip, ex, blk)
		if err != nil {
			return nil, err
		}
		want := min(per, a.valueLen-uint32(len(val)))
		if sb.crc {
			if string(b[:4]) != "XARM" || !crcOK(b, remoteCRCOff) {
				return nil, corruptf("remote value block %d: bad magic or checksum", blk)
			}
			off, n := be.Uint32(b[4:]), be.Uint32(b[8:])
			if off != uint32(len(val)) || n != want || be.Uint64(b[32:]) != ip.ino {
				return nil, corruptf("remote value block %d: header offset %d/%d bytes", blk, off, n)
			}
			b = b[remoteHdrSize:]
		}
		val = append(val, b[:want]...)
	}
	return val, nil
}

// aclToXattr converts XFS's big-endian on-disk ACL into the little-endian form Linux's getxattr returns.
func aclToXattr(b []byte) ([]byte, error) {
	const (
		diskEntry    = 12
		xattrVersion = 2
		undefinedID  = 0xffffffff
		aclUser      = 0x02
		aclGroup     = 0x08
	)
	if len(b) < 4 {
		return nil, corruptf("ACL truncated")
	}
	count := int(be.Uint32(b))
	if count > (len(b)-4)/diskEntry {
		return nil, corruptf("ACL of %d entries in %d bytes", count, len(b))
	}
	out := binary.LittleEndian.AppendUint32(nil, xattrVersion)
	for i := 0; i < count; i++ {
		e := b[4+i*diskEntry:]
		tag, id, perm := be.Uint32(e), be.Uint32(e[4:]), be.Uint16(e[8:])
		if tag != aclUser && tag != aclGroup {
			id = undefinedID
		}
		out = binary.LittleEndian.AppendUint16(out, uint16(tag))
		out = binary.LittleEndian.AppendUint16(out, perm)
		out = binary.LittleEndian.AppendUint32(out, id)
	}
	return out, nil
}
