package makefs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zlib"
)

// sqMeta is the data size of a squashfs metadata block.
const sqMeta = 8192

// sqFixParents writes each directory inode's parent inode number, which go-diskfs v1.9.4 leaves 0
// (mksquashfs writes the parent's number, and the root's is the inode count + 1). The kernel only shows
// it as ".."'s inode number, but readers that check a directory is reached from its one parent (ours
// does, to refuse hard-linked directories) reject the image. The inode table must be uncompressed
// (FinalizeOptions.NoCompressInodes) so the numbers can be written in place.
func sqFixParents(f *os.File, start int64) error {
	sb := make([]byte, 96)
	if _, err := f.ReadAt(sb, start); err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint32(sb) != 0x73717368 {
		return fmt.Errorf("no squashfs superblock at %d", start)
	}
	count := le.Uint32(sb[4:])
	size := int64(le.Uint64(sb[40:]))
	rootRef := le.Uint64(sb[32:])
	inodeStart := start + int64(le.Uint64(sb[64:]))
	dirStart := start + int64(le.Uint64(sb[72:]))
	meta := func(table int64, block int64, off, n int) ([]byte, error) {
		var out []byte
		pos := table + block
		for len(out) < off+n {
			if pos >= start+size {
				return nil, fmt.Errorf("metadata at %d runs past the image", pos)
			}
			var h [2]byte
			if _, err := f.ReadAt(h[:], pos); err != nil {
				return nil, err
			}
			l := int64(le.Uint16(h[:]) & 0x7fff)
			raw := make([]byte, l)
			if _, err := f.ReadAt(raw, pos+2); err != nil {
				return nil, fmt.Errorf("metadata block at %d (%d bytes): %w", pos-start, l, err)
			}
			if le.Uint16(h[:])&0x8000 == 0 {
				zr, err := zlib.NewReader(bytes.NewReader(raw))
				if err != nil {
					return nil, fmt.Errorf("metadata block at %d (%d bytes, header %#x): %w", pos-start, l, le.Uint16(h[:]), err)
				}
				if raw, err = io.ReadAll(io.LimitReader(zr, sqMeta)); err != nil {
					return nil, fmt.Errorf("metadata block at %d: %w", pos-start, err)
				}
			}
			out = append(out, raw...)
			pos += 2 + l
		}
		return out[off : off+n], nil
	}
	// inode reads n bytes of the inode at ref; put writes v at byte at of it (the table is uncompressed:
	// every block but the last holds exactly sqMeta bytes after its 2-byte header).
	inode := func(ref uint64, n int) ([]byte, error) {
		return meta(inodeStart, int64(ref>>16), int(ref&0xffff), n)
	}
	put := func(ref uint64, at int, v uint32) error {
		var b [4]byte
		le.PutUint32(b[:], v)
		for i := range b {
			logical := int64(ref&0xffff) + int64(at+i)
			pos := inodeStart + int64(ref>>16) + logical/sqMeta*(2+sqMeta) + 2 + logical%sqMeta
			if _, err := f.WriteAt(b[i:i+1], pos); err != nil {
				return err
			}
		}
		return nil
	}
	seen := 0
	var walk func(ref uint64, parent uint32) error
	walk = func(ref uint64, parent uint32) error {
		if seen++; seen > int(count) {
			return fmt.Errorf("more directories than inodes")
		}
		in, err := inode(ref, 36)
		if err != nil {
			return err
		}
		number := le.Uint32(in[12:])
		var block, listSize int64
		var off int
		switch le.Uint16(in) {
		case 1:
			block, listSize, off = int64(le.Uint32(in[16:])), int64(le.Uint16(in[24:])), int(le.Uint16(in[26:]))
		case 8:
			listSize, block, off = int64(le.Uint32(in[20:])), int64(le.Uint32(in[24:])), int(le.Uint16(in[34:]))
		default:
			return fmt.Errorf("inode %d is not a directory", number)
		}
		if err := put(ref, 28, parent); err != nil {
			return err
		}
		if listSize <= 3 {
			return nil
		}
		if listSize > size {
			return fmt.Errorf("directory %d lists %d bytes", number, listSize)
		}
		l, err := meta(dirStart, block, off, int(listSize-3))
		if err != nil {
			return err
		}
		for len(l) >= 12 {
			n, startBlk := le.Uint32(l), le.Uint32(l[4:])
			l = l[12:]
			for i := uint32(0); i <= n && len(l) >= 8; i++ {
				eoff, typ, nameLen := le.Uint16(l), le.Uint16(l[4:]), int(le.Uint16(l[6:]))+1
				if len(l) < 8+nameLen {
					return fmt.Errorf("directory %d: entry runs past its listing", number)
				}
				l = l[8+nameLen:]
				if typ == 1 || typ == 8 {
					if err := walk(uint64(startBlk)<<16|uint64(eoff), number); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return walk(rootRef, count+1)
}

// sqFixDirTable rewrites the directory table go-diskfs v1.9.4 mis-addresses once the listings pass one
// 8 KiB metadata block: it records a folder's place as the index of its logical 8 KiB block (not the
// block's byte offset) and writes a block larger than 8 KiB when one folder's listing is. The listings
// themselves are right, so the table is re-cut into 8 KiB uncompressed blocks, each folder inode is
// pointed at its block's byte offset, and the tables after it (fragments, export, ids) move by the
// change in size, their index entries with them. The inode table must be uncompressed.
func sqFixDirTable(f *os.File, start int64) error {
	le := binary.LittleEndian
	sb := make([]byte, 96)
	if _, err := f.ReadAt(sb, start); err != nil {
		return err
	}
	inodes, frags, ids := int64(le.Uint32(sb[4:])), int64(le.Uint32(sb[16:])), int64(le.Uint16(sb[26:]))
	used := int64(le.Uint64(sb[40:]))
	idTable, xattr := int64(le.Uint64(sb[48:])), le.Uint64(sb[56:])
	inodeTable, dirTable := int64(le.Uint64(sb[64:])), int64(le.Uint64(sb[72:]))
	fragTable, exportTable := int64(le.Uint64(sb[80:])), int64(le.Uint64(sb[88:]))
	if xattr != ^uint64(0) {
		return fmt.Errorf("an xattr table is not expected")
	}
	u64 := func(at int64) (int64, error) {
		var b [8]byte
		_, err := f.ReadAt(b[:], start+at)
		return int64(le.Uint64(b[:])), err
	}
	// The listings end where the next table's metadata blocks begin (each table's index follows them).
	type index struct {
		at, n int64 // where the index lies (superblock value), its entry count
		sbOff int   // superblock field holding it
	}
	idxs := []index{{idTable, (ids*4 + sqMeta - 1) / sqMeta, 48}}
	if frags > 0 {
		idxs = append(idxs, index{fragTable, (frags*16 + sqMeta - 1) / sqMeta, 80})
	}
	if exportTable != -1 {
		idxs = append(idxs, index{exportTable, (inodes*8 + sqMeta - 1) / sqMeta, 88})
	}
	dirEnd := used
	for _, ix := range idxs {
		first, err := u64(ix.at)
		if err != nil {
			return err
		}
		dirEnd = min(dirEnd, first)
	}
	if dirEnd <= dirTable || dirEnd > used {
		return fmt.Errorf("directory table [%d, %d) out of place", dirTable, dirEnd)
	}
	// The logical listing stream.
	var stream []byte
	for pos := dirTable; pos < dirEnd; {
		var h [2]byte
		if _, err := f.ReadAt(h[:], start+pos); err != nil {
			return err
		}
		l := int64(le.Uint16(h[:]) & 0x7fff)
		// go-diskfs writes what is left as one last block, whose length can pass the 15 bits of its
		// header: then the block runs to the end of the table, and the header holds its low bits.
		if rest := dirEnd - pos - 2; rest != l && rest > sqMeta && rest&0x7fff == l {
			l = rest
		}
		raw := make([]byte, l)
		if _, err := f.ReadAt(raw, start+pos+2); err != nil {
			return err
		}
		if le.Uint16(h[:])&0x8000 == 0 {
			zr, err := zlib.NewReader(bytes.NewReader(raw))
			if err != nil {
				return fmt.Errorf("directory block at %d: %w", pos, err)
			}
			if raw, err = io.ReadAll(io.LimitReader(zr, 256<<20)); err != nil {
				return fmt.Errorf("directory block at %d: %w", pos, err)
			}
		}
		stream = append(stream, raw...)
		pos += 2 + l
	}
	// Re-cut it.
	var table []byte
	for i := 0; i < len(stream); i += sqMeta {
		chunk := stream[i:min(i+sqMeta, len(stream))]
		table = binary.LittleEndian.AppendUint16(table, 0x8000|uint16(len(chunk)))
		table = append(table, chunk...)
	}
	tail := make([]byte, used-dirEnd)
	if _, err := f.ReadAt(tail, start+dirEnd); err != nil {
		return err
	}
	delta := dirTable + int64(len(table)) - dirEnd
	for _, ix := range idxs {
		rel := ix.at - dirEnd
		for i := int64(0); i < ix.n; i++ {
			p := tail[rel+8*i:]
			le.PutUint64(p, uint64(int64(le.Uint64(p))+delta))
		}
		le.PutUint64(sb[ix.sbOff:], uint64(ix.at+delta))
	}
	le.PutUint64(sb[40:], uint64(used+delta))
	if _, err := f.WriteAt(append(table, tail...), start+dirTable); err != nil {
		return err
	}
	if _, err := f.WriteAt(sb, start); err != nil {
		return err
	}
	// Point each folder inode at its listing's new block. Walk the inode table (uncompressed, so the
	// stream is the blocks' data back to back) by each inode's own length.
	it, err := readUncompressed(f, start+inodeTable, start+dirTable)
	if err != nil {
		return err
	}
	for pos, n := 0, int64(0); n < inodes; n++ {
		if pos+32 > len(it.data) {
			return fmt.Errorf("inode table ends at inode %d of %d", n, inodes)
		}
		in := it.data[pos:]
		size, fixAt, err := sqInodeSize(in, int(le.Uint32(sb[12:])))
		if err != nil {
			return fmt.Errorf("inode %d: %w", n, err)
		}
		if fixAt > 0 {
			blockAt, offAt := pos+fixAt, pos+fixAt+10
			logical := int64(le.Uint32(it.data[blockAt:]))*sqMeta + int64(le.Uint16(it.data[offAt:]))
			var b [4]byte
			le.PutUint32(b[:], uint32(logical/sqMeta*(2+sqMeta)))
			if err := it.write(f, blockAt, b[:]); err != nil {
				return err
			}
		}
		pos += size
	}
	return nil
}

type uncompressedTable struct {
	data []byte
	pos  []int64 // file position of each 8 KiB block's data
}

func readUncompressed(f *os.File, from, to int64) (*uncompressedTable, error) {
	t := &uncompressedTable{}
	for pos := from; pos < to; {
		var h [2]byte
		if _, err := f.ReadAt(h[:], pos); err != nil {
			return nil, err
		}
		v := binary.LittleEndian.Uint16(h[:])
		if v&0x8000 == 0 {
			return nil, fmt.Errorf("inode block at %d is compressed", pos)
		}
		l := int64(v & 0x7fff)
		b := make([]byte, l)
		if _, err := f.ReadAt(b, pos+2); err != nil {
			return nil, err
		}
		t.pos = append(t.pos, pos+2)
		t.data = append(t.data, b...)
		pos += 2 + l
	}
	return t, nil
}

// write puts b at stream offset at, through the block boundaries.
func (t *uncompressedTable) write(f *os.File, at int, b []byte) error {
	for i := range b {
		p := at + i
		if _, err := f.WriteAt(b[i:i+1], t.pos[p/sqMeta]+int64(p%sqMeta)); err != nil {
			return err
		}
		t.data[p] = b[i]
	}
	return nil
}

// sqInodeSize is an inode's length, and for a folder inode the offset of its block_idx field (the
// offset field follows it 10 bytes later in both forms).
func sqInodeSize(in []byte, blockSize int) (size, dirBlockAt int, err error) {
	le := binary.LittleEndian
	blocks := func(fileSize int64, frag uint32) int {
		n := fileSize / int64(blockSize)
		if frag == 0xffffffff && fileSize%int64(blockSize) != 0 {
			n++
		}
		return int(n)
	}
	switch typ := le.Uint16(in); typ {
	case 1: // dir: block_idx +16, link +20, size u16 +24, offset u16 +26, parent +28
		return 32, 16, nil
	case 8: // ldir: link +16, size +20, block +24, parent +28, icount u16 +32, offset u16 +34, xattr +36
		if n := le.Uint16(in[32:]); n != 0 {
			return 0, 0, fmt.Errorf("folder index entries are not expected")
		}
		return 40, 24, nil
	case 2: // file: blocks_start +16, frag +20, offset +24, size u32 +28
		return 32 + 4*blocks(int64(le.Uint32(in[28:])), le.Uint32(in[20:])), 0, nil
	case 9: // lfile: start u64 +16, size u64 +24, sparse +32, link +40, frag +44, offset +48, xattr +52
		return 56 + 4*blocks(int64(le.Uint64(in[24:])), le.Uint32(in[44:])), 0, nil
	case 3, 10: // symlink: link +16, size +20, target
		n := 24 + int(le.Uint32(in[20:]))
		if typ == 10 {
			n += 4
		}
		return n, 0, nil
	case 4, 5: // block and char devices
		return 24, 0, nil
	case 6, 7: // fifo, socket
		return 20, 0, nil
	default:
		return 0, 0, fmt.Errorf("inode type %d", typ)
	}
}
