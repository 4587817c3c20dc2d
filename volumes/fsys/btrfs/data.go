package btrfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"sync"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zstd"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Extent kinds and compressions of an EXTENT_DATA item.
const (
	extInline   = 0
	extRegular  = 1
	extPrealloc = 2

	compNone = 0
	compZlib = 1
	compLZO  = 2
	compZstd = 3

	maxCompressed = 128 << 10 // Btrfs never compresses more than this into one extent
)

// extent is one file extent: [pos, pos+length) of the file.
type extent struct {
	pos, length uint64
	kind        uint8
	compression uint8
	inline      []byte // inline data as stored (compressed or not)
	ram         uint64 // decompressed size of the whole extent (inline or on disk)
	disk        uint64 // logical address of the extent on disk (0: a hole)
	diskLen     uint64
	offset      uint64 // where the file's bytes start within the decompressed extent
}

func parseExtent(k key, d []byte) (extent, error) {
	if len(d) < 21 {
		return extent{}, fmt.Errorf("%w: extent item of %d bytes", ErrCorrupt, len(d))
	}
	e := extent{pos: k.offset, ram: binary.LittleEndian.Uint64(d[8:]), compression: d[16], kind: d[20]}
	if d[17] != 0 || binary.LittleEndian.Uint16(d[18:]) != 0 {
		return extent{}, fmt.Errorf("%w: encrypted or otherwise encoded extent", ErrUnsupported)
	}
	if e.compression > compZstd {
		return extent{}, fmt.Errorf("%w: compression %d", ErrUnsupported, e.compression)
	}
	switch e.kind {
	case extInline:
		e.inline, e.length = d[21:], e.ram
		if e.ram > maxCompressed {
			return extent{}, fmt.Errorf("%w: inline extent of %d bytes", ErrCorrupt, e.ram)
		}
	case extRegular, extPrealloc:
		if len(d) < 53 {
			return extent{}, fmt.Errorf("%w: extent item of %d bytes", ErrCorrupt, len(d))
		}
		le64 := func(o int) uint64 { return binary.LittleEndian.Uint64(d[o:]) }
		e.disk, e.diskLen, e.offset, e.length = le64(21), le64(29), le64(37), le64(45)
		if e.compression != compNone && (e.ram > maxCompressed || e.diskLen > maxCompressed || e.offset+e.length > e.ram) {
			return extent{}, fmt.Errorf("%w: compressed extent of %d bytes (%d on disk) holding [%d,+%d)", ErrCorrupt, e.ram, e.diskLen, e.offset, e.length)
		}
	default:
		return extent{}, fmt.Errorf("%w: extent type %d", ErrCorrupt, e.kind)
	}
	if e.pos+e.length < e.pos {
		return extent{}, fmt.Errorf("%w: extent at %d of %d bytes wraps", ErrCorrupt, e.pos, e.length)
	}
	return e, nil
}

// fileReader reads an inode's data through its extents, loaded on first use.
type fileReader struct {
	f    *FS
	ip   *inode
	once sync.Once
	ext  []extent
	err  error
}

func (r *fileReader) load() error {
	r.once.Do(func() {
		keys, datas, err := r.f.items(r.f.subs[r.ip.sub], r.ip.ino, typeExtentData)
		if err != nil {
			r.err = err
			return
		}
		for i, d := range datas {
			e, err := parseExtent(keys[i], d)
			if err != nil {
				r.err = fmt.Errorf("inode %d extent at %d: %w", r.ip.ino, keys[i].offset, err)
				if errors.Is(err, ErrUnsupported) {
					slog.Warn("btrfs: file data cannot be read here", "subvolume", r.ip.sub, "inode", r.ip.ino, "reason", err)
				}
				return
			}
			r.ext = append(r.ext, e)
		}
	})
	return r.err
}

// readAt fills p from file offset off, zeros where no extent lies (holes) or past an extent's data.
func (r *fileReader) readAt(p []byte, off int64) (int, error) {
	if off >= r.ip.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), r.ip.size-off)]
	if err := r.load(); err != nil {
		return 0, err
	}
	done := 0
	for done < len(want) {
		pos := uint64(off) + uint64(done)
		i := sort.Search(len(r.ext), func(i int) bool { return r.ext[i].pos > pos }) - 1
		if i < 0 || pos >= r.ext[i].pos+r.ext[i].length {
			// A hole: zeros up to the next extent.
			next := uint64(off) + uint64(len(want))
			if i+1 < len(r.ext) {
				next = min(next, r.ext[i+1].pos)
			}
			clear(want[done : done+int(next-pos)])
			done += int(next - pos)
			continue
		}
		e := &r.ext[i]
		n := int(min(uint64(len(want)-done), e.pos+e.length-pos))
		if err := r.f.readExtent(e, want[done:done+n], pos-e.pos); err != nil {
			return done, fmt.Errorf("inode %d at %d: %w", r.ip.ino, pos, err)
		}
		done += n
	}
	if len(want) < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// readExtent fills b with the extent's bytes from rel (relative to the extent's file position).
func (f *FS) readExtent(e *extent, b []byte, rel uint64) error {
	switch {
	case e.kind == extPrealloc || (e.kind == extRegular && e.disk == 0):
		clear(b)
		return nil
	case e.compression == compNone && e.kind == extRegular:
		return f.readData(b, e.disk+e.offset+rel)
	}
	data, err := f.extentData(e)
	if err != nil {
		return err
	}
	start := e.offset + rel
	n := 0
	if start < uint64(len(data)) {
		n = copy(b, data[start:])
	}
	clear(b[n:])
	return nil
}

// extentData returns the whole decompressed extent (inline data, or a compressed extent on disk,
// cached by its address).
func (f *FS) extentData(e *extent) ([]byte, error) {
	if e.kind == extInline {
		if e.compression == compNone {
			return e.inline, nil
		}
		return f.decompress(e.compression, e.inline, e.ram)
	}
	if d, ok := f.data.Get(e.disk); ok && uint64(len(d)) == e.ram {
		return d, nil
	}
	raw := make([]byte, e.diskLen)
	if err := f.readData(raw, e.disk); err != nil {
		return nil, err
	}
	d, err := f.decompress(e.compression, raw, e.ram)
	if err != nil {
		return nil, fmt.Errorf("extent at %d: %w", e.disk, err)
	}
	f.data.Put(e.disk, d, len(d))
	return d, nil
}

// decompress inflates src to at most ram bytes; more is damage.
func (f *FS) decompress(c uint8, src []byte, ram uint64) ([]byte, error) {
	switch c {
	case compZlib:
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %w", ErrCorrupt, err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(ram)+1))
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %w", ErrCorrupt, err)
		}
		return checkInflated(out, ram)
	case compZstd:
		return decompressZstd(src, ram)
	case compLZO:
		return f.lzo(src, ram)
	}
	return nil, fmt.Errorf("%w: compression %d", ErrUnsupported, c)
}

func checkInflated(out []byte, ram uint64) ([]byte, error) {
	if uint64(len(out)) > ram {
		return nil, inflatesPast(ram)
	}
	return out, nil
}

func inflatesPast(ram uint64) error {
	return fmt.Errorf("%w: a compressed extent inflates past its %d bytes", ErrCorrupt, ram)
}

// lzo inflates Btrfs's LZO framing: a 32-bit total length, then per sector-sized piece of output a
// 32-bit length and that much LZO1X data; a length never straddles a sector boundary of the input
// (the writer pads to the next sector instead).
func (f *FS) lzo(src []byte, ram uint64) (out []byte, err error) {
	defer func() {
		// The lzo library indexes its input directly; keep a hostile extent from crashing the caller.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: lzo: %v", ErrCorrupt, r)
		}
	}()
	if len(src) < 4 {
		return nil, fmt.Errorf("%w: lzo extent of %d bytes", ErrCorrupt, len(src))
	}
	total := int(binary.LittleEndian.Uint32(src))
	if total > len(src) || total < 4 {
		return nil, fmt.Errorf("%w: lzo length %d in %d bytes", ErrCorrupt, total, len(src))
	}
	sector := int(f.sb.sectorSize)
	out = make([]byte, 0, ram)
	pos := 4
	for pos < total && uint64(len(out)) < ram {
		if rest := sector - pos%sector; rest < 4 {
			pos += rest
			continue
		}
		if pos+4 > total {
			break
		}
		n := int(binary.LittleEndian.Uint32(src[pos:]))
		pos += 4
		if n > total-pos || n > 2*sector {
			return nil, fmt.Errorf("%w: lzo segment of %d bytes", ErrCorrupt, n)
		}
		buf := make([]byte, sector)
		m, err := lzo.Decompress(src[pos:pos+n], buf)
		if err != nil && m == 0 {
			return nil, fmt.Errorf("%w: lzo: %w", ErrCorrupt, err)
		}
		out = append(out, buf[:m]...)
		pos += n
	}
	return checkInflated(out, ram)
}

// file is an open regular file (or other non-directory).
type file struct {
	fileReader
	name string
	fi   *fsys.Info
	fsys.Cursor
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.fi, nil }
func (fl *file) Close() error               { return nil }

// ReadAt is safe for concurrent use.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	n, err := fl.readAt(p, off)
	if err != nil && err != io.EOF {
		return n, &fs.PathError{Op: "read", Path: fl.name, Err: err}
	}
	return n, err
}

func (fl *file) Read(p []byte) (int, error) { return fl.ReadFrom(fl, p) }

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	return fl.SeekIn(fl.name, fl.ip.size, offset, whence)
}

var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxCompressed*4),
	zstd.WithDecodeAllCapLimit(true))

// decompressZstd inflates the one zstd frame of an extent. The frame is followed by zeros up to the
// sector, which the decoder takes for a bad second frame: what counts is that the first frame gave
// all the bytes its header announces.
func decompressZstd(src []byte, ram uint64) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	if h.HasFCS && h.FrameContentSize > ram {
		return nil, inflatesPast(ram)
	}
	out, err := zstdDecoder.DecodeAll(src, make([]byte, 0, ram))
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return nil, inflatesPast(ram)
	}
	if err != nil && !(h.HasFCS && uint64(len(out)) == h.FrameContentSize && len(out) > 0) {
		return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	return checkInflated(out, ram)
}
