package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const (
	blockUncompressed = 1 << 24
	blockSizeMask     = blockUncompressed - 1
)

// Open opens name, following symlinks. Regular files are fsys.File; directories are fs.ReadDirFile.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	info := f.info(name, n.in)
	switch n.in.typ {
	case typeFile:
		rf, err := f.newRegular(n.in)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		rf.info = info
		return rf, nil
	case typeDir:
		return &fsys.DirFile{Path: name, Info: info, Load: func() ([]fs.DirEntry, error) { return f.readDirNode(name, n) }}, nil
	}
	return &specialFile{info: info}, nil
}

// regularFile reads a file's data blocks and fragment tail. ReadAt is safe for concurrent use; Read and
// Seek share one offset and take a lock.
type regularFile struct {
	f      *FS
	in     *inode
	info   *fsys.Info
	starts []int64 // disk position of each block (meaningless for sparse blocks)
	fsys.Cursor
}

func (f *FS) newRegular(in *inode) (*regularFile, error) {
	rf := &regularFile{f: f, in: in, starts: make([]int64, len(in.blocks))}
	pos := int64(in.start)
	for i, b := range in.blocks {
		rf.starts[i] = pos
		pos += int64(b & blockSizeMask)
		if pos > f.end || pos < 0 {
			return nil, fmt.Errorf("%w: inode %d data blocks run past the image", ErrCorrupt, in.number)
		}
	}
	return rf, nil
}

func (rf *regularFile) Stat() (fs.FileInfo, error) { return rf.info, nil }
func (rf *regularFile) Close() error               { return nil }

func (rf *regularFile) Read(p []byte) (int, error) { return rf.ReadFrom(rf, p) }

func (rf *regularFile) Seek(offset int64, whence int) (int64, error) {
	return rf.SeekIn(rf.info.EntryName, int64(rf.in.size), offset, whence)
}

// ReadAt reads len(p) bytes at off, returning io.EOF when it reaches the end of the file.
func (rf *regularFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("squashfs: negative offset")
	}
	size := int64(rf.in.size)
	if off >= size {
		return 0, io.EOF
	}
	want := p
	if int64(len(p)) > size-off {
		want = p[:size-off]
	}
	bs := int64(rf.f.sb.blockSize)
	done := 0
	for done < len(want) {
		pos := off + int64(done)
		blk, inBlk := pos/bs, pos%bs
		data, err := rf.block(blk)
		if err != nil {
			return done, err
		}
		if inBlk >= int64(len(data)) {
			return done, fmt.Errorf("%w: inode %d block %d holds %d bytes, need offset %d",
				ErrCorrupt, rf.in.number, blk, len(data), inBlk)
		}
		done += copy(want[done:], data[inBlk:])
	}
	if len(want) < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// block returns block i of the file, decompressed; its length is the block size except at the tail.
func (rf *regularFile) block(i int64) ([]byte, error) {
	bs := int64(rf.f.sb.blockSize)
	expect := min(bs, int64(rf.in.size)-i*bs)
	if i < int64(len(rf.in.blocks)) {
		b := rf.in.blocks[i]
		if b&blockSizeMask == 0 {
			return make([]byte, expect), nil // sparse block
		}
		data, err := rf.f.dataBlock(rf.starts[i], b, int(bs))
		if err != nil {
			return nil, fmt.Errorf("inode %d block %d: %w", rf.in.number, i, err)
		}
		if int64(len(data)) != expect {
			return nil, fmt.Errorf("%w: inode %d block %d is %d bytes, want %d",
				ErrCorrupt, rf.in.number, i, len(data), expect)
		}
		return data, nil
	}
	if rf.in.frag == noIndex || i != int64(len(rf.in.blocks)) {
		return nil, fmt.Errorf("%w: inode %d has no block %d", ErrCorrupt, rf.in.number, i)
	}
	frag, err := rf.f.fragment(rf.in.frag)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", rf.in.number, err)
	}
	end := int64(rf.in.fragOff) + expect
	if end > int64(len(frag)) {
		return nil, fmt.Errorf("%w: inode %d tail %d+%d beyond fragment of %d bytes",
			ErrCorrupt, rf.in.number, rf.in.fragOff, expect, len(frag))
	}
	return frag[rf.in.fragOff:end], nil
}

// dataBlock reads and decompresses (through the cache) the data block at pos with size word sz.
func (f *FS) dataBlock(pos int64, sz uint32, max int) ([]byte, error) {
	if e, ok := f.dataCache.get(pos); ok {
		return e.data, nil
	}
	n := int64(sz & blockSizeMask)
	if n > int64(max) || pos+n > f.end {
		return nil, fmt.Errorf("%w: data block at %d of %d bytes", ErrCorrupt, pos, n)
	}
	raw := make([]byte, n)
	if _, err := f.r.ReadAt(raw, pos); err != nil {
		return nil, fmt.Errorf("squashfs: reading data block at %d: %w", pos, err)
	}
	data := raw
	if sz&blockUncompressed == 0 {
		var err error
		if data, err = f.dec.decompress(raw, max); err != nil {
			return nil, fmt.Errorf("data block at %d: %w", pos, err)
		}
	}
	f.dataCache.put(&cacheEntry{key: pos, data: data, diskSz: int(n)})
	return data, nil
}

// fragment returns fragment block idx, decompressed.
func (f *FS) fragment(idx uint32) ([]byte, error) {
	e, err := f.tableEntry(f.sb.fragTableStart, uint64(f.sb.fragCount), 16, uint64(idx))
	if err != nil {
		return nil, fmt.Errorf("fragment %d: %w", idx, err)
	}
	start, sz := int64(binary.LittleEndian.Uint64(e)), binary.LittleEndian.Uint32(e[8:])
	if sz&blockSizeMask == 0 || start < 0 {
		return nil, fmt.Errorf("%w: fragment %d entry (%d, %#x)", ErrCorrupt, idx, start, sz)
	}
	return f.dataBlock(start, sz, int(f.sb.blockSize))
}

// specialFile is an open device, fifo or socket: it has a Stat but no data.
type specialFile struct{ info *fsys.Info }

func (s *specialFile) Stat() (fs.FileInfo, error) { return s.info, nil }
func (s *specialFile) Close() error               { return nil }
func (s *specialFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: s.info.EntryName, Err: fs.ErrInvalid}
}
