package ntfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// maxXattrSize bounds a stream returned whole by GetXattr; OpenStream reads larger ones.
const maxXattrSize = 64 << 20

// Open opens a file (an fsys.File reading the unnamed data stream) or a directory
// (an fs.ReadDirFile), following symlinks.
func (f *FS) Open(name string) (_ fs.File, err error) {
	defer guard(&err)
	nd, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	fi, err := f.infoAs(nd, name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return &fsys.DirFile{Path: name, Info: fi, Load: func() ([]fs.DirEntry, error) { return f.readDir(nd, name) }}, nil
	}
	return f.openData(nd, name, "", fi)
}

// OpenInode opens the unnamed data stream of the regular file in MFT record ino (fsys.InodeOpener).
// Metadata files stay hidden unless ShowSystemFiles is set, as in listings.
func (f *FS) OpenInode(ino uint64, name string) (_ fsys.File, err error) {
	defer guard(&err)
	if ino < recFirstUser && !f.opt.ShowSystemFiles {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	n, err := f.inode(ino)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	nd := node{ino: n, name: path.Base(name), dir: path.Dir(name)}
	fi, err := f.infoAs(nd, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("MFT record %d is not a regular file: %w", ino, fs.ErrInvalid)}
	}
	return f.openData(nd, name, "", fi)
}

// OpenStream opens the named alternate data stream of name (not following a final symlink); an
// empty stream name opens the unnamed (main) data stream.
func (f *FS) OpenStream(name, streamName string) (_ fsys.File, err error) {
	defer guard(&err)
	nd, err := f.resolve("openstream", name, false)
	if err != nil {
		return nil, err
	}
	fi, err := f.infoAs(nd, name)
	if err != nil {
		return nil, err
	}
	return f.openData(nd, name, streamName, fi)
}

func (f *FS) openData(nd node, name, streamName string, fi fs.FileInfo) (*fileHandle, error) {
	a := nd.ino.find(attrData, streamName)
	if a == nil && streamName != "" {
		return nil, &fs.PathError{Op: "open", Path: name + ":" + streamName, Err: ErrNoStream}
	}
	h := &fileHandle{name: name, info: fi}
	if streamName == "" && fi.Mode().IsRegular() {
		// Data behind a reparse point (WOF compression, cloud, deduplication) or EFS-encrypted.
		r, err := f.dataReader(nd.ino, name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		if r != nil {
			h.s = r
			return h, nil
		}
	}
	if a != nil && a.flags&attrFlagEncrypted != 0 {
		// EFS: the clusters hold ciphertext; like ntfs-3g (without efs_raw) refuse to open.
		slog.Warn("ntfs: EFS-encrypted data cannot be read", "file", name, "stream", streamName)
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: EFS-encrypted data", errors.ErrUnsupported)}
	}
	if streamName != "" {
		h.info = &streamInfo{FileInfo: fi, name: path.Base(name) + ":" + streamName, size: a.dataSize}
	}
	if a != nil && fi.Mode().IsRegular() || streamName != "" {
		s, err := f.newStream(nd.ino.num, a)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		h.s = s
	}
	return h, nil
}

// streamInfo is the FileInfo of an alternate data stream: the file's, with the stream's name and size.
type streamInfo struct {
	fs.FileInfo
	name string
	size int64
}

func (s *streamInfo) Name() string { return s.name }
func (s *streamInfo) Size() int64  { return s.size }

// fileHandle reads one data stream. ReadAt is safe concurrently; Read and Seek share an offset.
type fileHandle struct {
	name string
	info fs.FileInfo
	s    io.ReaderAt // nil for entries with no data (FIFOs, devices, empty files without $DATA)
	fsys.Cursor
}

func (h *fileHandle) Stat() (fs.FileInfo, error) { return h.info, nil }
func (h *fileHandle) Close() error               { return nil }

func (h *fileHandle) ReadAt(p []byte, off int64) (n int, err error) {
	defer guard(&err)
	if h.s == nil {
		return 0, io.EOF
	}
	n, err = h.s.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = &fs.PathError{Op: "read", Path: h.name, Err: err}
	}
	return n, err
}

func (h *fileHandle) Read(p []byte) (int, error) { return h.ReadFrom(h, p) }

func (h *fileHandle) Seek(offset int64, whence int) (int64, error) {
	return h.SeekIn(h.name, h.info.Size(), offset, whence)
}

// ListXattr names the entry's alternate data streams as user.<stream>, as ntfs-3g's
// streams_interface=xattr does.
func (f *FS) ListXattr(name string) (_ []string, err error) {
	defer guard(&err)
	nd, err := f.resolve("listxattr", name, false)
	if err != nil {
		return nil, err
	}
	var out []string
	if nd.ino.num < recFirstUser {
		return out, nil // ntfs-3g shows no streams of the metadata files
	}
	for _, a := range nd.ino.attrs {
		if a.typ == attrData && a.name != "" {
			out = append(out, "user."+a.name)
		}
	}
	if f.unreadable(nd.ino) != "" {
		out = append(out, ReparseXattr)
	}
	sort.Strings(out)
	return out, nil
}

// GetXattr returns the content of the alternate data stream named by a user.<stream> attribute.
func (f *FS) GetXattr(name, attr string) (_ []byte, err error) {
	defer guard(&err)
	nd, err := f.resolve("getxattr", name, false)
	if err != nil {
		return nil, err
	}
	if attr == ReparseXattr && nd.ino.num >= recFirstUser {
		if why := f.unreadable(nd.ino); why != "" {
			return []byte(why), nil
		}
	}
	streamName, ok := strings.CutPrefix(attr, "user.")
	var a *attribute
	if ok && streamName != "" && nd.ino.num >= recFirstUser {
		a = nd.ino.find(attrData, streamName)
	}
	if a == nil {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fmt.Errorf("%s: %w", attr, fsys.ErrNoXattr)}
	}
	v, err := f.attrValue(nd.ino.num, a, maxXattrSize)
	if err != nil {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: err}
	}
	return append([]byte(nil), v...), nil
}

var _ fsys.StreamFS = (*FS)(nil)

// ListStreams names the alternate data streams of name (fsys.StreamFS), as ListXattr does; like
// ntfs-3g it shows none for the metadata files.
func (f *FS) ListStreams(name string) (_ []fsys.Stream, err error) {
	defer guard(&err)
	nd, err := f.resolve("liststreams", name, false)
	if err != nil {
		return nil, err
	}
	var out []fsys.Stream
	if nd.ino.num < recFirstUser {
		return out, nil
	}
	for _, a := range nd.ino.attrs {
		if a.typ == attrData && a.name != "" {
			out = append(out, fsys.Stream{Name: a.name, Size: a.dataSize})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
