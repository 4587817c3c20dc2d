package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// dirent is one live directory entry.
type dirent struct {
	name  string
	ino   uint32
	ftype uint8 // 0 when the filesystem has no filetype feature
}

// dirIndex is a directory's entries sorted by name, so listing and lookup need no rescan.
type dirIndex struct {
	entries []dirent
	parent  uint32 // the ".." entry: a directory reached from anywhere else is a loop or a second link
	// second names the entries left out of entries because an earlier name (in sorted order) of this
	// listing already names the same directory: a directory has one name (nil when there is none).
	second map[string]bool
}

// lookup finds name; a second name of a directory gives errDirLoop.
func (d *dirIndex) lookup(name string) (dirent, error) {
	if d.second[name] {
		return dirent{}, errDirLoop
	}
	i, ok := slices.BinarySearchFunc(d.entries, name, func(e dirent, n string) int { return strings.Compare(e.name, n) })
	if !ok {
		return dirent{}, fs.ErrNotExist
	}
	return d.entries[i], nil
}

const direntHeader = 8

// dirDamage hears of a malformed entry that parseDirBlock skipped: its offset in the block and why.
type dirDamage func(pos int, why string)

// parseDirBlock appends the live entries of one directory block (or inline area) to out. A linear
// scan also covers htree directories: their index blocks look like one empty entry spanning the block.
//
// Damage is skipped as the kernel's readdir skips it: an entry whose record is malformed (length, name
// length, inode number) ends the block, since nothing after it can be trusted, and the next block is
// read; an entry whose name the VFS cannot show (empty, or with '/' or NUL) and a second ".." are left
// out on their own. Each is reported to damaged (nil: ignored). *parent is set from the first "..".
func parseDirBlock(b []byte, hasFiletype bool, blockSize uint32, maxIno uint32, out []dirent, parent *uint32, damaged dirDamage) []dirent {
	scanDirBlock(b, hasFiletype, blockSize, maxIno, parent, damaged, func(e dirent, _, _ int) { out = append(out, e) })
	return out
}

// scanDirBlock is parseDirBlock giving each live entry to emit with its record's start and end.
func scanDirBlock(b []byte, hasFiletype bool, blockSize uint32, maxIno uint32, parent *uint32, damaged dirDamage, emit func(e dirent, start, end int)) {
	if damaged == nil {
		damaged = func(int, string) {}
	}
	le := binary.LittleEndian
	for pos := 0; pos < len(b); {
		if pos+direntHeader > len(b) {
			damaged(pos, "entry header truncated by the end of the block")
			return
		}
		ino := le.Uint32(b[pos:])
		recLen := decodeRecLen(le.Uint16(b[pos+4:]), blockSize)
		nameLen := int(b[pos+6])
		var ftype uint8
		if hasFiletype {
			ftype = b[pos+7]
		} else {
			nameLen |= int(b[pos+7]) << 8
		}
		if recLen < direntHeader || recLen%4 != 0 || pos+recLen > len(b) {
			damaged(pos, fmt.Sprintf("record length %d", recLen))
			return
		}
		if ino != 0 && direntHeader+nameLen > recLen {
			damaged(pos, fmt.Sprintf("name length %d in a %d-byte record", nameLen, recLen))
			return
		}
		if ino > maxIno {
			damaged(pos, fmt.Sprintf("inode %d beyond the volume's %d", ino, maxIno))
			return
		}
		if ino != 0 {
			name := string(b[pos+direntHeader : pos+direntHeader+nameLen])
			switch {
			case name == "..":
				if *parent == 0 {
					*parent = ino
				} else {
					damaged(pos, fmt.Sprintf("a second \"..\" entry (inode %d)", ino))
				}
			case name == ".":
			case nameLen == 0 || strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
				damaged(pos, fmt.Sprintf("name %q", name))
			default:
				emit(dirent{name: name, ino: ino, ftype: ftype}, pos, pos+recLen)
			}
		}
		pos += recLen
	}
}

// logDamage is the dirDamage of block blk of directory inode dir: a warning in the log.
func logDamage(dir uint32, blk int64) dirDamage {
	return func(pos int, why string) {
		slog.Warn("ext4: bad directory entry skipped", "dir_inode", dir, "block", blk, "offset", pos, "problem", why)
	}
}

// decodeRecLen undoes the 64 KiB-block encoding of rec_len (65535 or 0 mean a whole block).
func decodeRecLen(v uint16, blockSize uint32) int {
	if blockSize < 65536 {
		return int(v)
	}
	if v == 65535 || v == 0 {
		return int(blockSize)
	}
	return int(v&65532) | int(v&3)<<16
}

// directory returns the sorted entries of directory inode in, from the cache when it can.
func (f *FS) directory(in *inode) (*dirIndex, error) {
	if d, ok := f.dirs.get(in.ino); ok {
		return d, nil
	}
	if !in.isDir() {
		return nil, fmt.Errorf("inode %d: %w", in.ino, errNotDir)
	}
	if in.flags&flagEncrypt != 0 {
		return nil, fmt.Errorf("directory inode %d: %w", in.ino, errEncrypted)
	}
	var ents []dirent
	var parent uint32
	var err error
	if in.flags&flagInlineData != 0 {
		ents, parent, err = f.inlineDirents(in)
	} else {
		ents, parent, err = f.blockDirents(in)
	}
	if err != nil {
		return nil, fmt.Errorf("directory inode %d: %w", in.ino, err)
	}
	slices.SortStableFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	// A damaged directory may repeat a name; keep the first so listings stay unique.
	ents = slices.CompactFunc(ents, func(a, b dirent) bool { return a.name == b.name })
	ents, second := f.dropSecondLinks(ents)
	d := &dirIndex{entries: slices.Clip(ents), parent: parent, second: second}
	f.dirs.put(in.ino, d, len(ents)+1)
	return d, nil
}

// dropSecondLinks leaves out every entry that names a directory an earlier entry already names (the
// kernel shows a directory under one name; hard-linked siblings would double a walk at every level).
// It returns the names left out (see fsys.SecondDirNames).
func (f *FS) dropSecondLinks(ents []dirent) ([]dirent, map[string]bool) {
	drop := fsys.SecondDirNames(ents, func(e dirent) uint32 { return e.ino }, f.namesDir)
	if drop == nil {
		return ents, nil
	}
	second := make(map[string]bool, len(drop))
	kept := ents[:0:0]
	for i, e := range ents {
		if drop[i] {
			second[e.name] = true
			slog.Debug("ext4: second name of a directory left out", "name", e.name, "inode", e.ino)
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
	in, err := f.inode(e.ino)
	return err == nil && in.isDir()
}

func (f *FS) blockDirents(in *inode) (ents []dirent, parent uint32, err error) {
	db, err := f.dirBlocksOf(in)
	if err != nil {
		return nil, 0, err
	}
	bs := uint64(f.sb.blockSize)
	hasFT := f.sb.has(incompatFiletype)
	dmg := &damageLog{dir: in.ino}
	defer dmg.done()
	chunk := make([]byte, 64*bs)
	for blk, phys, count, ok := db.next(0); ok; blk, phys, count, ok = db.next(blk) {
		// Contiguous blocks in one read, as the kernel's readahead does.
		n := min(count, 64)
		if err := f.readBlock(chunk[:n*bs], phys); err != nil {
			return nil, 0, err
		}
		for k := range n {
			ents = parseDirBlock(chunk[k*bs:(k+1)*bs], hasFT, f.sb.blockSize, f.sb.inodesCount, ents, &parent, dmg.at(int64(blk+k)))
		}
		blk += n
	}
	return ents, parent, nil
}

// inlineDirents lists an inline directory: the parent inode in the first 4 bytes of i_block, entries
// in the other 56, and more entries in the system.data attribute.
func (f *FS) inlineDirents(in *inode) ([]dirent, uint32, error) {
	hasFT := f.sb.has(incompatFiletype)
	parent := binary.LittleEndian.Uint32(in.block[:4])
	ents := parseDirBlock(in.block[4:], hasFT, f.sb.blockSize, f.sb.inodesCount, nil, &parent, logDamage(in.ino, -1))
	tail, err := f.inlineTail(in)
	if err != nil {
		return nil, 0, err
	}
	if len(tail) > 0 {
		ents = parseDirBlock(tail, hasFT, f.sb.blockSize, f.sb.inodesCount, ents, &parent, logDamage(in.ino, -1))
	}
	return ents, parent, nil
}
