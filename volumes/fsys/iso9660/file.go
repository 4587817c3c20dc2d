package iso9660

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Open opens name, following symlinks. Regular files are fsys.File; directories are fs.ReadDirFile.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	in := info(name, n)
	switch {
	case n.isDir():
		return &fsys.DirFile{Path: name, Info: in, Load: func() ([]fs.DirEntry, error) { return f.readDirNode(name, n) }}, nil
	case n.st.Mode&fsys.S_IFMT == fsys.S_IFREG:
		for _, e := range n.extents {
			if int64(e.block)*sectorSize+int64(e.size) > f.size {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf(
					"%w: data at block %d (%d bytes) runs past the image end", ErrCorrupt, e.block, e.size)}
			}
		}
		return &regularFile{r: f.r, n: n, info: in}, nil
	}
	return &specialFile{info: in}, nil
}

// regularFile reads a file's extents. ReadAt is safe for concurrent use; Read and Seek share an offset.
type regularFile struct {
	r    io.ReaderAt
	n    *node
	info *fsys.Info
	fsys.Cursor
}

func (rf *regularFile) Stat() (fs.FileInfo, error) { return rf.info, nil }
func (rf *regularFile) Close() error               { return nil }

func (rf *regularFile) Read(p []byte) (int, error) { return rf.ReadFrom(rf, p) }

func (rf *regularFile) Seek(offset int64, whence int) (int64, error) {
	return rf.SeekIn(rf.info.EntryName, rf.n.st.Size, offset, whence)
}

// ReadAt reads across the file's extents, returning io.EOF at the end of the file.
func (rf *regularFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("iso9660: negative offset")
	}
	if rf.n.zf != nil {
		e := rf.n.extents[0]
		raw := io.NewSectionReader(rf.r, int64(e.block)*sectorSize, int64(e.size))
		return readZisofs(rf.n.zf, raw, int64(e.size), p, off)
	}
	return rf.readRaw(p, off)
}

// readRaw reads the stored bytes of the file's extents.
func (rf *regularFile) readRaw(p []byte, off int64) (int, error) {
	done := 0
	base := int64(0) // file offset where the current extent begins
	for _, e := range rf.n.extents {
		if done == len(p) {
			break
		}
		pos := off + int64(done)
		if pos >= base+int64(e.size) {
			base += int64(e.size)
			continue
		}
		take := min(int64(len(p)-done), base+int64(e.size)-pos)
		n, err := rf.r.ReadAt(p[done:done+int(take)], int64(e.block)*sectorSize+pos-base)
		done += n
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == take) {
			return done, fmt.Errorf("iso9660: reading file data: %w", err)
		}
		base += int64(e.size)
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// specialFile is an open device, fifo or socket.
type specialFile struct{ info *fsys.Info }

func (s *specialFile) Stat() (fs.FileInfo, error) { return s.info, nil }
func (s *specialFile) Close() error               { return nil }
func (s *specialFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: s.info.EntryName, Err: fs.ErrInvalid}
}
