package xfs

import (
	"fmt"
	"io/fs"
	"log/slog"
	"sort"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var errDirLoop = fmt.Errorf("%w: second link to a directory (its \"..\" names another directory)", ErrCorrupt)

// dirent is one name in a directory. ftype is the XFS_DIR3_FT_* code, 0 when the volume has none.
type dirent struct {
	name  string
	ino   uint64
	ftype uint8
}

// dirMap is a directory's names sorted for listing and binary-search lookups.
type dirMap struct {
	ents   []dirent
	parent uint64 // ".." (the shortform header's parent): a directory reached from elsewhere is a second link
	// second names the entries left out because an earlier name of this listing (in sorted order)
	// names the same directory: a directory has one name. Nil when there is none.
	second map[string]bool
}

// lookup finds name; a second name of a directory gives errDirLoop.
func (d *dirMap) lookup(name string) (dirent, bool, error) {
	if d.second[name] {
		return dirent{}, false, errDirLoop
	}
	e, ok := d.find(name)
	return e, ok, nil
}

func (d *dirMap) find(name string) (dirent, bool) {
	i := sort.Search(len(d.ents), func(i int) bool { return d.ents[i].name >= name })
	if i < len(d.ents) && d.ents[i].name == name {
		return d.ents[i], true
	}
	return dirent{}, false
}

const (
	// Directory data lives below this byte offset in the fork; leaf and free-index blocks above it.
	dirLeafOffset = 1 << 35
	dataHdrV4     = 16
	dataHdrV5     = 64
	dataCRCOff    = 4
	dataOwnerOff  = 40
	blockTailSize = 8
	freeTag       = 0xffff
	// maxInodeNumber masks the 56 bits an inode number may use.
	maxInodeNumber = 1<<56 - 1
)

// dirFType maps XFS_DIR3_FT_* to io/fs type bits.
var dirFType = [...]fs.FileMode{
	1: 0, 2: fs.ModeDir, 3: fs.ModeDevice | fs.ModeCharDevice, 4: fs.ModeDevice,
	5: fs.ModeNamedPipe, 6: fs.ModeSocket, 7: fs.ModeSymlink,
}

// readDir returns the name map of directory ip.
func (f *FS) readDir(ip *inode) (*dirMap, error) {
	if !ip.isDir() {
		return nil, fmt.Errorf("%v: %w", ip, errNotDir)
	}
	if d, ok := f.dirs.Get(ip.ino); ok {
		return d, nil
	}
	var ents []dirent
	var parent uint64
	var err error
	if ip.format == fmtLocal {
		ents, err = parseShortformDir(ip.dfork[:ip.size], f.sb.hasFType)
		parent = shortformParent(ip.dfork[:ip.size])
	} else {
		ents, parent, err = f.readDirBlocks(ip)
	}
	if err != nil {
		return nil, fmt.Errorf("directory %v: %w", ip, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	out := ents[:0]
	for i, e := range ents { // a corrupt directory may repeat a name: keep the first
		if i == 0 || e.name != ents[i-1].name {
			out = append(out, e)
		}
	}
	out, second := f.dropSecondLinks(out)
	d := &dirMap{ents: out, parent: parent, second: second}
	cost := 64
	for _, e := range out {
		cost += len(e.name) + 40
	}
	f.dirs.Put(ip.ino, d, cost)
	return d, nil
}

// dropSecondLinks leaves out every entry naming a directory that an earlier entry already names (the
// kernel shows a directory under one name; hard-linked siblings would double a walk at every level).
// It returns the names left out (see fsys.SecondDirNames).
func (f *FS) dropSecondLinks(ents []dirent) ([]dirent, map[string]bool) {
	drop := fsys.SecondDirNames(ents, func(e dirent) uint64 { return e.ino }, f.namesDir)
	if drop == nil {
		return ents, nil
	}
	second := make(map[string]bool, len(drop))
	kept := make([]dirent, 0, len(ents))
	for i, e := range ents {
		if drop[i] {
			second[e.name] = true
			slog.Debug("xfs: second name of a directory left out", "name", e.name, "inode", e.ino)
			continue
		}
		kept = append(kept, e)
	}
	return kept, second
}

// namesDir reports whether e names a directory, from its file type or else from its inode.
func (f *FS) namesDir(e dirent) bool {
	if e.ftype != 0 {
		return e.ftype == 2
	}
	ip, err := f.inode(e.ino)
	return err == nil && ip.isDir()
}

// parentOf returns the ".." of directory ip: from its cached listing, its shortform header, or the
// first data block (where ".." always is), so a lookup through a big directory does not read all of it.
func (f *FS) parentOf(ip *inode) (uint64, error) {
	if d, ok := f.dirs.Get(ip.ino); ok {
		return d.parent, nil
	}
	if ip.format == fmtLocal {
		return shortformParent(ip.dfork[:ip.size]), nil
	}
	if p, ok := f.parents.Get(ip.ino); ok {
		return p, nil
	}
	ex, err := f.forkExtents(ip, false)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, f.sb.dirBlkSize)
	if err := f.readMapped(ex, buf, 0); err != nil {
		return 0, err
	}
	var parent uint64
	if _, err := parseDataBlockParent(buf, f.sb, ip.ino, nil, &parent); err != nil {
		return 0, fmt.Errorf("directory %v first block: %w", ip, err)
	}
	f.parents.Put(ip.ino, parent, 1)
	return parent, nil
}

// shortformParent reads the parent inode from a shortform directory's header (0 when truncated).
func shortformParent(b []byte) uint64 {
	if len(b) < 2 {
		return 0
	}
	if b[1] != 0 {
		if len(b) < 10 {
			return 0
		}
		return be.Uint64(b[2:]) & maxInodeNumber
	}
	if len(b) < 6 {
		return 0
	}
	return uint64(be.Uint32(b[2:]))
}

// parseShortformDir decodes a directory stored inside its inode.
func parseShortformDir(b []byte, ftype bool) ([]dirent, error) {
	if len(b) < 2 {
		return nil, corruptf("shortform directory header truncated")
	}
	// count is every entry; a non-zero i8count (entries needing 64-bit inode numbers) widens them all.
	count, i8 := int(b[0]), b[1]
	inoSize := 4
	if i8 != 0 {
		inoSize = 8
	}
	pos := 2 + inoSize // skip the parent pointer
	if pos > len(b) {
		return nil, corruptf("shortform directory header truncated")
	}
	ents := make([]dirent, 0, count)
	for n := 0; n < count; n++ {
		if pos+3 > len(b) {
			return nil, corruptf("shortform entry %d truncated", n)
		}
		nameLen := int(b[pos])
		pos += 3 // namelen, offset
		need := nameLen + inoSize
		if ftype {
			need++
		}
		if nameLen == 0 || pos+need > len(b) {
			return nil, corruptf("shortform entry %d: name length %d overruns", n, nameLen)
		}
		e := dirent{name: string(b[pos : pos+nameLen])}
		pos += nameLen
		if ftype {
			e.ftype = b[pos]
			pos++
		}
		if inoSize == 8 {
			e.ino = be.Uint64(b[pos:]) & maxInodeNumber
		} else {
			e.ino = uint64(be.Uint32(b[pos:]))
		}
		pos += inoSize
		if err := checkName(e.name); err != nil {
			return nil, err
		}
		ents = append(ents, e)
	}
	return ents, nil
}

func checkName(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return corruptf("directory entry name %q", name)
		}
	}
	return nil
}

// readDirBlocks reads every data block of an extent- or btree-format directory.
func (f *FS) readDirBlocks(ip *inode) ([]dirent, uint64, error) {
	ex, err := f.forkExtents(ip, false)
	if err != nil {
		return nil, 0, err
	}
	var parent uint64
	sb := f.sb
	perDirBlock := uint64(1) << sb.dirBlkLog
	leafBlock := uint64(dirLeafOffset) >> sb.blockLog
	var ents []dirent
	buf := make([]byte, sb.dirBlkSize)
	next := uint64(0) // first file block not yet read
	for _, e := range ex {
		if e.off >= leafBlock {
			break
		}
		first := max(e.off, next) / perDirBlock * perDirBlock
		end := min(e.off+e.count, leafBlock)
		for db := first; db < end; db += perDirBlock {
			if db < next {
				continue
			}
			if err := f.readMapped(ex, buf, int64(db<<sb.blockLog)); err != nil {
				return nil, 0, err
			}
			ents, err = parseDataBlockParent(buf, sb, ip.ino, ents, &parent)
			if err != nil {
				return nil, 0, fmt.Errorf("data block at file block %d: %w", db, err)
			}
			next = db + perDirBlock
		}
	}
	return ents, parent, nil
}

// parseDataBlock appends the entries of one directory data block. A block-form directory's only block
// (magic XD2B/XDB3) also holds the hash index and a tail, which end its data area early.
func parseDataBlock(b []byte, sb *superblock, owner uint64, ents []dirent) ([]dirent, error) {
	var parent uint64
	return parseDataBlockParent(b, sb, owner, ents, &parent)
}

// parseDataBlockParent is parseDataBlock that also sets *parent when the block holds "..".
func parseDataBlockParent(b []byte, sb *superblock, owner uint64, ents []dirent, parent *uint64) ([]dirent, error) {
	err := scanDataBlock(b, sb, owner, parent, func(e dirent, _, _ int) { ents = append(ents, e) })
	if err != nil {
		return nil, err
	}
	return ents, nil
}

// scanDataBlock gives each entry of one directory data block to emit, with its record's start and end.
func scanDataBlock(b []byte, sb *superblock, owner uint64, parent *uint64, emit func(e dirent, start, end int)) error {
	hdr, dataMagic, blockMagic := dataHdrV4, "XD2D", "XD2B"
	if sb.crc {
		hdr, dataMagic, blockMagic = dataHdrV5, "XDD3", "XDB3"
	}
	if len(b) < hdr || (string(b[:4]) != dataMagic && string(b[:4]) != blockMagic) {
		return corruptf("directory block magic %q", b[:min(4, len(b))])
	}
	block := string(b[:4]) == blockMagic
	if sb.crc {
		if !crcOK(b, dataCRCOff) {
			return corruptf("checksum mismatch")
		}
		if got := be.Uint64(b[dataOwnerOff:]); got != owner {
			return corruptf("block owned by inode %d", got)
		}
	}
	end := len(b)
	if block {
		count := int(be.Uint32(b[len(b)-blockTailSize:]))
		end = len(b) - blockTailSize - count*8
		if count > len(b)/8 || end < hdr {
			return corruptf("block tail counts %d leaf entries", count)
		}
	}
	for pos := hdr; pos < end; {
		if end-pos < 8 {
			return corruptf("entry at %d truncated", pos)
		}
		if be.Uint16(b[pos:]) == freeTag {
			n := int(be.Uint16(b[pos+2:]))
			if n < 8 || n%8 != 0 || pos+n > end {
				return corruptf("free region of %d bytes at %d", n, pos)
			}
			pos += n
			continue
		}
		if end-pos < 16 { // the smallest entry: inode, length, 1-byte name, tag, rounded to 8
			return corruptf("entry at %d truncated", pos)
		}
		ino := be.Uint64(b[pos:])
		nameLen := int(b[pos+8])
		size := 8 + 1 + nameLen + 2
		if sb.hasFType {
			size++
		}
		size = (size + 7) &^ 7
		if nameLen == 0 || pos+size > end {
			return corruptf("entry at %d with name length %d overruns", pos, nameLen)
		}
		if tag := int(be.Uint16(b[pos+size-2:])); tag != pos {
			return corruptf("entry at %d carries tag %d", pos, tag)
		}
		e := dirent{name: string(b[pos+9 : pos+9+nameLen]), ino: ino}
		if sb.hasFType {
			e.ftype = b[pos+9+nameLen]
		}
		pos += size
		if e.name == ".." {
			*parent = e.ino
		}
		if e.name == "." || e.name == ".." {
			continue
		}
		if err := checkName(e.name); err != nil {
			return err
		}
		emit(e, pos-size, pos)
	}
	return nil
}
