package fat

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
	file := &file{f: f, name: name, fi: fi, size: int64(e.size)}
	if e.size > 0 {
		if e.cluster == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: file of %d bytes has no first cluster", ErrCorrupt, e.size)}
		}
		file.first = e.cluster
	}
	return file, nil
}

// file reads a regular file. Its chain is walked on first read, so opening stays cheap.
type file struct {
	f     *FS
	name  string
	fi    *fsys.Info
	size  int64
	first uint32

	once   sync.Once
	runs   []extent
	starts []int64 // cluster index in the file where each run begins
	cerr   error

	fsys.Cursor
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.fi, nil }
func (fl *file) Close() error               { return nil }

func (fl *file) load() error {
	fl.once.Do(func() {
		cs := fl.f.g.clusterSize
		need := (fl.size + cs - 1) / cs
		c, err := fl.f.tab.walk(fl.first, need)
		if err != nil {
			fl.cerr = err
			return
		}
		var idx int64
		for _, r := range c.runs {
			fl.runs = append(fl.runs, r)
			fl.starts = append(fl.starts, idx)
			idx += int64(r.count)
		}
		if idx < need {
			fl.cerr = fmt.Errorf("%w: file of %d bytes has only %d clusters in its chain", ErrCorrupt, fl.size, idx)
		}
	})
	return fl.cerr
}

// ReadAt reads from the file's clusters; it is safe for concurrent use.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	if err := fl.load(); err != nil {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: err}
	}
	cs := fl.f.g.clusterSize
	want := p
	if rest := fl.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n := 0
	for n < len(want) {
		ci := (off + int64(n)) / cs
		k := sort.Search(len(fl.starts), func(i int) bool { return fl.starts[i] > ci }) - 1
		r := fl.runs[k]
		inRun := ci - fl.starts[k]
		within := (off + int64(n)) % cs
		runBytes := (int64(r.count)-inRun)*cs - within
		chunk := want[n:]
		if int64(len(chunk)) > runBytes {
			chunk = chunk[:runBytes]
		}
		at := fl.f.clusterOffset(r.first+uint32(inRun)) + within
		m, err := fl.f.r.ReadAt(chunk, at)
		n += m
		if err != nil && m < len(chunk) {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: cluster %d lies beyond the end of the image", ErrCorrupt, r.first+uint32(inRun))
			}
			return n, &fs.PathError{Op: "read", Path: fl.name, Err: err}
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) Read(p []byte) (int, error) { return fl.ReadFrom(fl, p) }

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	return fl.SeekIn(fl.name, fl.size, offset, whence)
}
