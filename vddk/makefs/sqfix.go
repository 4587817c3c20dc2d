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

// sqRewrite rewrites the metadata go-diskfs v1.9.4 writes after the data (inode, directory, fragment,
// export and id tables) as uncompressed 8 KiB blocks, in mksquashfs's order, repairing on the way:
//   - the directory table is mis-addressed once the listings pass one metadata block: a folder inode
//     holds the index of its listing's logical 8 KiB block, not the block's byte offset, and a listing
//     larger than 8 KiB lands in one oversized block whose 15-bit length is truncated;
//   - every folder's parent inode number is 0 (mksquashfs writes the parent's number, the root's is
//     the inode count + 1): the kernel only shows it as ".."'s number, but readers that check a folder
//     is reached from its one parent (ours does, to refuse hard-linked folders) reject the image.
//
// Repairing in place needs uncompressed metadata, and go-diskfs compresses it with the data's
// compressor whatever NoCompressInodes says; so it is decoded, repaired and written anew. Inode
// references (block byte offset << 16 | offset) are moved to the new blocks' offsets wherever they
// are held: the root reference, the listings' headers and the export table. With level > 0 the
// data and fragment blocks, which go-diskfs then writes uncompressed, are compressed at that zlib
// level and laid out anew (sqCompress), the tables after them; with 0 they stay where they are.
func sqRewrite(f *os.File, start int64, level int) error {
	le := binary.LittleEndian
	sb := make([]byte, 96)
	if _, err := f.ReadAt(sb, start); err != nil {
		return err
	}
	if le.Uint32(sb) != 0x73717368 {
		return fmt.Errorf("no squashfs superblock at %d", start)
	}
	inodes, blockSize, frags := int64(le.Uint32(sb[4:])), int(le.Uint32(sb[12:])), int64(le.Uint32(sb[16:]))
	ids := int64(le.Uint16(sb[26:]))
	rootRef, used := le.Uint64(sb[32:]), int64(le.Uint64(sb[40:]))
	idTable, xattr := int64(le.Uint64(sb[48:])), le.Uint64(sb[56:])
	inodeTable, dirTable := int64(le.Uint64(sb[64:])), int64(le.Uint64(sb[72:]))
	fragTable, exportTable := int64(le.Uint64(sb[80:])), int64(le.Uint64(sb[88:]))
	if xattr != ^uint64(0) {
		return fmt.Errorf("an xattr table is not expected")
	}
	if !(0 < inodeTable && inodeTable < dirTable && dirTable < used) {
		return fmt.Errorf("tables out of place (inodes at %d, folders at %d, %d bytes used)", inodeTable, dirTable, used)
	}
	// Read the whole tail once: it is metadata only, a small part of the image.
	tail := make([]byte, used-inodeTable)
	if _, err := f.ReadAt(tail, start+inodeTable); err != nil {
		return err
	}
	at := func(pos int64) []byte { return tail[pos-inodeTable:] }
	// A table's index: n block positions at pos.
	index := func(pos, entries, size int64) ([]int64, error) {
		n := (entries*size + sqMeta - 1) / sqMeta
		if pos < dirTable || pos+8*n > used {
			return nil, fmt.Errorf("table index at %d out of place", pos)
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(at(pos)[8*i:]))
			if out[i] < dirTable || out[i] >= pos {
				return nil, fmt.Errorf("table block at %d out of place", out[i])
			}
		}
		return out, nil
	}
	fragIdx, err := index(fragTable, frags, 16)
	if err != nil && frags > 0 {
		return fmt.Errorf("fragment table: %w", err)
	}
	exportIdx := []int64(nil)
	if exportTable != -1 {
		if exportIdx, err = index(exportTable, inodes, 8); err != nil {
			return fmt.Errorf("export table: %w", err)
		}
	}
	idIdx, err := index(idTable, ids, 4)
	if err != nil {
		return fmt.Errorf("id table: %w", err)
	}
	dirEnd := idIdx[0]
	for _, l := range [][]int64{fragIdx, exportIdx} {
		if len(l) > 0 {
			dirEnd = min(dirEnd, l[0])
		}
	}
	// decode reads the metadata blocks in [from, to) as one stream, and maps each block's byte offset
	// (from the table start) to its number.
	decode := func(from, to int64, oversized bool) ([]byte, map[uint32]int, error) {
		var stream []byte
		blocks := map[uint32]int{}
		for pos := from; pos < to; {
			if pos+2 > to {
				return nil, nil, fmt.Errorf("metadata block header at %d runs past its table", pos)
			}
			h := le.Uint16(at(pos))
			l := int64(h & 0x7fff)
			// go-diskfs writes the rest of a directory table as one block whose length can pass the
			// 15 bits of its header: then it runs to the end of the table, and the header has its low bits.
			if rest := to - pos - 2; oversized && rest != l && rest > sqMeta && rest&0x7fff == l {
				l = rest
			}
			if pos+2+l > to {
				return nil, nil, fmt.Errorf("metadata block at %d runs past its table", pos)
			}
			raw := at(pos + 2)[:l]
			if h&0x8000 == 0 {
				zr, err := zlib.NewReader(bytes.NewReader(raw))
				if err != nil {
					return nil, nil, fmt.Errorf("metadata block at %d: %w", pos, err)
				}
				if raw, err = io.ReadAll(io.LimitReader(zr, 256<<20)); err != nil {
					return nil, nil, fmt.Errorf("metadata block at %d: %w", pos, err)
				}
			}
			if len(stream)%sqMeta != 0 {
				return nil, nil, fmt.Errorf("metadata block before %d holds %d bytes, not %d", pos, len(stream)%sqMeta, sqMeta)
			}
			blocks[uint32(pos-from)] = len(stream) / sqMeta
			stream = append(stream, raw...)
			pos += 2 + l
		}
		return stream, blocks, nil
	}
	inodeStream, inodeBlocks, err := decode(inodeTable, dirTable, false)
	if err != nil {
		return fmt.Errorf("inode table: %w", err)
	}
	dirStream, _, err := decode(dirTable, dirEnd, true)
	if err != nil {
		return fmt.Errorf("directory table: %w", err)
	}
	// An inode reference, as a position in the inode stream and as it reads once rewritten.
	logical := func(ref uint64) (int, error) {
		b, ok := inodeBlocks[uint32(ref>>16)]
		if !ok || ref>>48 != 0 {
			return 0, fmt.Errorf("inode reference %#x names no metadata block", ref)
		}
		return b*sqMeta + int(ref&0xffff), nil
	}
	newRef := func(ref uint64) (uint64, error) {
		p, err := logical(ref)
		return uint64(p/sqMeta*(2+sqMeta))<<16 | uint64(p%sqMeta), err
	}
	// Folder inodes: where each lies, and its listing.
	type dirInode struct {
		pos, listing, size int // listing: position in the directory stream
		blockAt, offAt     int // fields to rewrite, as positions in the inode stream
	}
	dirs := map[int]*dirInode{} // by position in the inode stream
	posRef := func(p int) uint64 { return uint64(p/sqMeta*(2+sqMeta))<<16 | uint64(p%sqMeta) }
	byNumber := make([]uint64, inodes) // the export table: references by inode number
	var files []int                    // positions of file inodes
	for pos, n := 0, int64(0); n < inodes; n++ {
		if pos+16 > len(inodeStream) {
			return fmt.Errorf("inode table ends at inode %d of %d", n, inodes)
		}
		in := inodeStream[pos:]
		if len(in) < 64 { // the last inodes: room for sqInodeSize's reads
			in = append(in[:len(in):len(in)], make([]byte, 64)...)
		}
		size, _, err := sqInodeSize(in, blockSize)
		if err != nil {
			return fmt.Errorf("inode %d: %w", n, err)
		}
		if pos+size > len(inodeStream) {
			return fmt.Errorf("inode %d runs past the inode table", n)
		}
		if num := int64(le.Uint32(in[12:])); num < 1 || num > inodes || byNumber[num-1] != 0 {
			return fmt.Errorf("inode %d has number %d (of %d), or a number another has", n, num, inodes)
		} else {
			byNumber[num-1] = posRef(pos) | 1<<63 // marked as seen; cleared below
		}
		switch le.Uint16(in) {
		case 1: // block_idx +16, size u16 +24, offset u16 +26
			d := &dirInode{pos: pos, size: int(le.Uint16(in[24:])), blockAt: pos + 16, offAt: pos + 26}
			dirs[pos] = d
		case 8: // size +20, block_idx +24, offset u16 +34
			d := &dirInode{pos: pos, size: int(le.Uint32(in[20:])), blockAt: pos + 24, offAt: pos + 34}
			dirs[pos] = d
		}
		if t := le.Uint16(in); t == 2 || t == 9 {
			files = append(files, pos)
		}
		if d := dirs[pos]; d != nil {
			// go-diskfs holds the logical block's number where the byte offset belongs.
			d.listing = int(le.Uint32(inodeStream[d.blockAt:]))*sqMeta + int(le.Uint16(inodeStream[d.offAt:]))
			if d.size < 3 || d.listing+d.size-3 > len(dirStream) {
				return fmt.Errorf("inode %d: listing of %d bytes at %d runs past the directory table", n, d.size, d.listing)
			}
			le.PutUint32(inodeStream[d.blockAt:], uint32(d.listing/sqMeta*(2+sqMeta)))
			le.PutUint16(inodeStream[d.offAt:], uint16(d.listing%sqMeta))
		}
		pos += size
	}
	// Listings: move their inode references, and give each child folder its parent's number.
	root, err := logical(rootRef)
	if err != nil {
		return err
	}
	if dirs[root] == nil {
		return fmt.Errorf("the root inode is not a folder")
	}
	le.PutUint32(inodeStream[root+28:], uint32(inodes+1))
	for _, d := range dirs {
		number := le.Uint32(inodeStream[d.pos+12:])
		l := dirStream[d.listing : d.listing+d.size-3]
		for off := 0; off < len(l); {
			if off+12 > len(l) {
				return fmt.Errorf("folder %d: listing header runs past it", number)
			}
			count, blk := le.Uint32(l[off:]), le.Uint32(l[off+4:])
			moved, err := newRef(uint64(blk) << 16)
			if err != nil {
				return fmt.Errorf("folder %d: %w", number, err)
			}
			le.PutUint32(l[off+4:], uint32(moved>>16))
			off += 12
			for i := uint32(0); i <= count; i++ {
				if off+8 > len(l) || off+8+int(le.Uint16(l[off+6:]))+1 > len(l) {
					return fmt.Errorf("folder %d: entry runs past its listing", number)
				}
				if typ := le.Uint16(l[off+4:]); typ == 1 || typ == 8 {
					child, err := logical(uint64(blk)<<16 | uint64(le.Uint16(l[off:])))
					if err != nil {
						return fmt.Errorf("folder %d: %w", number, err)
					}
					if dirs[child] == nil {
						return fmt.Errorf("folder %d: entry of folder type names no folder inode", number)
					}
					le.PutUint32(inodeStream[child+28:], number)
				}
				off += 8 + int(le.Uint16(l[off+6:])) + 1
			}
		}
	}
	// Tables after the directory table, decoded by their indexes.
	table := func(idx []int64, entries, size int64) ([]byte, error) {
		var out []byte
		for _, p := range idx {
			blk, _, err := decode(p, p+2+int64(le.Uint16(at(p))&0x7fff), false)
			if err != nil {
				return nil, err
			}
			out = append(out, blk...)
		}
		if int64(len(out)) < entries*size {
			return nil, fmt.Errorf("table holds %d bytes, %d entries need %d", len(out), entries, entries*size)
		}
		return out[:entries*size], nil
	}
	fragData, err := table(fragIdx, frags, 16)
	if err != nil {
		return fmt.Errorf("fragment table: %w", err)
	}
	// The data: compressed when go-diskfs wrote it raw (level > 0), the tables then follow it.
	base := inodeTable
	if level > 0 {
		var runs []sqRun
		for _, p := range files {
			size, _, _ := sqInodeSize(inodeStream[p:], blockSize) // checked above
			if le.Uint16(inodeStream[p:]) == 2 {
				runs = append(runs, sqRun{start: inodeStream[p+16:], sizes: inodeStream[p+32 : p+size]})
			} else {
				runs = append(runs, sqRun{start: inodeStream[p+16:], wide: true, sizes: inodeStream[p+56 : p+size]})
			}
		}
		for i := 0; i < len(fragData); i += 16 {
			runs = append(runs, sqRun{start: fragData[i:], wide: true, sizes: fragData[i+8 : i+12]})
		}
		if base, err = sqCompress(f, start, 96, inodeTable, blockSize, level, runs); err != nil {
			return err
		}
	}
	// go-diskfs writes the export table's references with the offset in the top 16 bits, where
	// readers (the kernel, for NFS handles) expect it in the low ones: it is made anew from the inodes.
	var exportData []byte
	if exportIdx != nil {
		for _, ref := range byNumber {
			exportData = le.AppendUint64(exportData, ref&^(1<<63))
		}
	}
	idData, err := table(idIdx, ids, 4)
	if err != nil {
		return fmt.Errorf("id table: %w", err)
	}
	newRoot, err := newRef(rootRef)
	if err != nil {
		return err
	}
	// Write it all anew from the inode table on.
	var out []byte
	cut := func(stream []byte) {
		for i := 0; i < len(stream); i += sqMeta {
			chunk := stream[i:min(i+sqMeta, len(stream))]
			out = le.AppendUint16(out, 0x8000|uint16(len(chunk)))
			out = append(out, chunk...)
		}
	}
	// indexed writes a table's blocks, then its index, and returns where the index lies.
	indexed := func(data []byte) int64 {
		first := base + int64(len(out))
		cut(data)
		pos := base + int64(len(out))
		for i := 0; i < len(data); i += sqMeta {
			out = le.AppendUint64(out, uint64(first+int64(i/sqMeta)*(2+sqMeta)))
		}
		return pos
	}
	cut(inodeStream)
	newDir := base + int64(len(out))
	cut(dirStream)
	newFrag := indexed(fragData)
	newExport := int64(-1)
	if exportData != nil {
		newExport = indexed(exportData)
	}
	newID := indexed(idData)
	newUsed := base + int64(len(out))
	if _, err := f.WriteAt(out, start+base); err != nil {
		return err
	}
	if newUsed < used { // what the old data and tables leave past the new end reads as zeros
		if err := f.Truncate(start + newUsed); err != nil {
			return err
		}
	}
	le.PutUint64(sb[32:], newRoot)
	le.PutUint64(sb[40:], uint64(newUsed))
	le.PutUint64(sb[64:], uint64(base))
	le.PutUint64(sb[48:], uint64(newID))
	le.PutUint64(sb[72:], uint64(newDir))
	le.PutUint64(sb[80:], uint64(newFrag))
	le.PutUint64(sb[88:], uint64(newExport))
	flags := le.Uint16(sb[24:]) | 0x0001 | 0x0800 // inodes and ids uncompressed
	if level > 0 {
		flags &^= 0x0002 | 0x0008 // data and fragments compressed
	}
	le.PutUint16(sb[24:], flags)
	_, err = f.WriteAt(sb, start)
	return err
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
