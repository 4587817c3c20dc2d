package exfat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Open opens a file (an fsys.File with ReadAt) or a directory (an fs.ReadDirFile).
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.info(n, baseName(n, name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.isDir() {
		return &fsys.DirFile{Path: name, Info: fi, Load: func() ([]fs.DirEntry, error) { return f.readDir(n, name) }}, nil
	}
	e := n.ent
	fl := &file{f: f, name: name, fi: fi, size: fi.St.Size, valid: int64(min(e.validLen, e.dataLen, uint64(fi.St.Size))), e: e}
	if fl.size > 0 && !e.allocated {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: file of %d bytes has no allocation", ErrCorrupt, fl.size)}
	}
	return fl, nil
}

// file reads a regular file; bytes at or past the valid data length read as zeros.
type file struct {
	f     *FS
	name  string
	fi    *fsys.Info
	e     *dirent
	size  int64
	valid int64

	once   sync.Once
	runs   []extent
	starts []int64
	lerr   error

	fsys.Cursor
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.fi, nil }
func (fl *file) Close() error               { return nil }

// load maps the clusters holding valid data; nothing past the valid length is ever read.
func (fl *file) load() error {
	fl.once.Do(func() {
		cs := fl.f.g.clusterSize
		runs, err := fl.f.tab.clustersOf(fl.e.first, (fl.valid+cs-1)/cs, fl.e.contiguous)
		if err != nil {
			fl.lerr = err
			return
		}
		var idx int64
		for _, r := range runs {
			fl.runs = append(fl.runs, r)
			fl.starts = append(fl.starts, idx)
			idx += int64(r.count)
		}
	})
	return fl.lerr
}

// ReadAt is safe for concurrent use.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	want := p
	if rest := fl.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n := 0
	if off < fl.valid {
		if err := fl.load(); err != nil {
			return 0, &fs.PathError{Op: "read", Path: fl.name, Err: err}
		}
		cs := fl.f.g.clusterSize
		for n < len(want) && off+int64(n) < fl.valid {
			cur := off + int64(n)
			ci := cur / cs
			k := sort.Search(len(fl.starts), func(i int) bool { return fl.starts[i] > ci }) - 1
			r := fl.runs[k]
			inRun := ci - fl.starts[k]
			within := cur % cs
			chunk := want[n:]
			limit := min((int64(r.count)-inRun)*cs-within, fl.valid-cur)
			if int64(len(chunk)) > limit {
				chunk = chunk[:limit]
			}
			m, err := fl.f.r.ReadAt(chunk, fl.f.clusterOffset(r.first+uint32(inRun))+within)
			n += m
			if err != nil && m < len(chunk) {
				if errors.Is(err, io.EOF) {
					err = fmt.Errorf("%w: cluster %d lies beyond the end of the image", ErrCorrupt, r.first+uint32(inRun))
				}
				return n, &fs.PathError{Op: "read", Path: fl.name, Err: err}
			}
		}
	}
	clear(want[n:])
	n = len(want)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) Read(p []byte) (int, error) { return fl.ReadFrom(fl, p) }

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	return fl.SeekIn(fl.name, fl.size, offset, whence)
}
