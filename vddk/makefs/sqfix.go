package makefs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/klauspost/compress/zlib"
)

// sqMeta is the data size of a squashfs metadata block.
const sqMeta = 8192

// sqListingBytes is what the folder listings of entries take in a squashfs directory table: per
// folder, a 12-byte header for each run of up to 256 entries, and 8 bytes plus the name per entry.
// go-diskfs v1.9.4 stores a folder's place in that table as the index of its 8 KiB block, not the
// block's byte offset, and may write a block larger than 8 KiB: the kernel and unsquashfs then fail
// to read every folder past the first block. So Make refuses trees whose listings pass one block.
func sqListingBytes(entries []entry) int {
	per := map[string][2]int{".": {}}
	for _, e := range entries {
		d := path.Dir(e.rel)
		v := per[d]
		v[0]++
		v[1] += 8 + len(path.Base(e.rel))
		per[d] = v
		if _, ok := per[e.rel]; e.mode.IsDir() && !ok {
			per[e.rel] = [2]int{} // an empty folder still has a (header-less) listing
		}
	}
	n := 0
	for _, v := range per {
		n += 12*((v[0]+255)/256) + v[1]
	}
	return n
}

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
