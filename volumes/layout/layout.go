// Package layout composes block devices out of other block devices: slices, concatenations, stripes,
// mirrors and RAID-5 sets. LVM and LDM volumes are built from these. Every device is stateless after
// construction, so ReadAt is safe from many goroutines at once.
package layout

import (
	"errors"
	"fmt"
	"io"
)

// Dev is a block device: positional reads and a fixed size.
type Dev interface {
	io.ReaderAt
	Size() int64
}

// ErrMissing is returned (wrapped) when a read needs a member that is absent.
var ErrMissing = errors.New("member device missing")

// readFull reads len(p) bytes at off from d, or fails: every member read in a composed device must be
// complete, since a short member read would silently return wrong data.
func readFull(d Dev, p []byte, off int64) error {
	if d == nil {
		return ErrMissing
	}
	n, err := d.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

// clip bounds a read of len(p) at off to a device of the given size. It returns the part to fill and
// whether the read is short (and so must end with io.EOF).
func clip(p []byte, off, size int64) ([]byte, bool, error) {
	if off < 0 {
		return nil, false, fmt.Errorf("negative offset %d", off)
	}
	if off >= size {
		return nil, true, nil
	}
	if int64(len(p)) > size-off {
		return p[:size-off], true, nil
	}
	return p, false, nil
}

// finish turns a fill result into ReadAt's return values.
func finish(n int, short bool, err error) (int, error) {
	if err != nil {
		return n, err
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

// Zero is a device of zeros.
type Zero int64

// Size implements Dev.
func (z Zero) Size() int64 { return int64(z) }

// ReadAt implements io.ReaderAt.
func (z Zero) ReadAt(p []byte, off int64) (int, error) {
	q, short, err := clip(p, off, int64(z))
	if err != nil {
		return 0, err
	}
	clear(q)
	return finish(len(q), short, nil)
}

// section is a window [off, off+size) of a device.
type section struct {
	dev       Dev
	off, size int64
}

// Slice returns the window [off, off+size) of d. The window must lie inside d.
func Slice(d Dev, off, size int64) (Dev, error) {
	if d == nil {
		return nil, ErrMissing
	}
	if off < 0 || size < 0 || off > d.Size() || size > d.Size()-off {
		return nil, fmt.Errorf("slice [%d, +%d) outside device of %d bytes", off, size, d.Size())
	}
	return &section{dev: d, off: off, size: size}, nil
}

func (s *section) Size() int64 { return s.size }

func (s *section) ReadAt(p []byte, off int64) (int, error) {
	q, short, err := clip(p, off, s.size)
	if err != nil {
		return 0, err
	}
	if len(q) == 0 {
		return finish(0, short, nil)
	}
	if err := readFull(s.dev, q, s.off+off); err != nil {
		return 0, err
	}
	return finish(len(q), short, nil)
}

// ReadFull, Clip and Finish are the read discipline of this package for composed devices built
// elsewhere (md arrays): complete member reads, reads bounded by the device size, io.EOF when short.
func ReadFull(d Dev, p []byte, off int64) error { return readFull(d, p, off) }

// Clip bounds a read of len(p) at off to size; see clip.
func Clip(p []byte, off, size int64) ([]byte, bool, error) { return clip(p, off, size) }

// Finish turns a fill result into ReadAt's return values; see finish.
func Finish(n int, short bool, err error) (int, error) { return finish(n, short, err) }
