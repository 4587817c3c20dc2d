package fsys

import (
	"errors"
	"io"
	"io/fs"
	"sync"
)

// Cursor gives an open regular file its sequential Read and its Seek on top of its ReaderAt: one
// position, guarded so that a handle shared by goroutines stays consistent. Readers embed it.
type Cursor struct {
	mu  sync.Mutex
	pos int64
}

// ReadFrom reads p from r at the cursor and moves it; io.EOF comes only with no bytes.
func (c *Cursor) ReadFrom(r io.ReaderAt, p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.ReadAt(p, c.pos)
	c.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// SeekIn moves the cursor of a file of size bytes; name is the path errors report.
func (c *Cursor) SeekIn(name string, size, offset int64, whence int) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.pos
	case io.SeekEnd:
		offset += size
	default:
		return 0, &fs.PathError{Op: "seek", Path: name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: name, Err: fs.ErrInvalid}
	}
	c.pos = offset
	return offset, nil
}

// ErrIsDir is what reading data from a directory gives.
var ErrIsDir = errors.New("is a directory")

// DirFile is an open directory: its entries are loaded on the first ReadDir and then handed out as
// fs.ReadDirFile says (all at once for n <= 0, else in pages ending with io.EOF).
type DirFile struct {
	Path string
	Info fs.FileInfo
	Load func() ([]fs.DirEntry, error)

	mu     sync.Mutex
	rest   []fs.DirEntry
	loaded bool
}

func (d *DirFile) Stat() (fs.FileInfo, error) { return d.Info, nil }
func (d *DirFile) Close() error               { return nil }
func (d *DirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.Path, Err: ErrIsDir}
}

// ReadDir follows the fs.ReadDirFile contract.
func (d *DirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded {
		all, err := d.Load()
		if err != nil {
			return nil, err
		}
		d.rest, d.loaded = all, true
	}
	if n <= 0 {
		out := d.rest
		d.rest = nil
		return out, nil
	}
	if len(d.rest) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.rest))
	out := d.rest[:k:k]
	d.rest = d.rest[k:]
	return out, nil
}
