package vddk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// fileCopier writes the chunks of a copy into a new file at their offsets. Ranges of image files go
// file to file inside the kernel: copy_file_range, which shares the blocks on file systems that can
// (btrfs, XFS) and copies inside the kernel on the others; between file systems, sendfile; where a file
// system refuses both, pread and pwrite. Holes of the source stay holes.
type fileCopier struct {
	dst    *os.File
	noCFR  bool // copy_file_range refused this pair of files
	noSend bool // so did sendfile
	buf    []byte
	// The last stretch of data found in a source file: later ranges inside it need no lseek (a
	// SEEK_HOLE walks the file's extents up to the next hole: all of them in a file without holes).
	known              *os.File
	knownFrom, knownTo int64
}

// writeChunk writes a prepared chunk: its spans copied from their files, its read bytes without their
// zero runs.
func (c *fileCopier) writeChunk(ch *chunk) error {
	for _, s := range ch.segs {
		var err error
		if s.src != nil {
			err = c.copyRange(s.src, s.srcOff, s.off, s.n)
		} else {
			err = writeSparseAt(c.dst, ch.buf[s.off-ch.off:][:s.n], s.off)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// copyRange copies n bytes at srcOff of src to dstOff of the destination, skipping src's holes.
func (c *fileCopier) copyRange(src *os.File, srcOff, dstOff, n int64) error {
	fd := int(src.Fd())
	end := srcOff + n
	for srcOff < end {
		data, hole := srcOff, c.knownTo
		if src != c.known || srcOff < c.knownFrom || srcOff >= c.knownTo {
			var err error
			if data, hole, err = dataRun(fd, srcOff, end); err != nil {
				return fmt.Errorf("%s: %w", src.Name(), err)
			}
			if data < end {
				c.known, c.knownFrom, c.knownTo = src, data, hole
			}
		}
		if data >= end {
			return nil
		}
		dstOff += data - srcOff
		srcOff = data
		m := min(end, hole) - srcOff
		if err := c.move(src, srcOff, dstOff, m); err != nil {
			return err
		}
		srcOff, dstOff = srcOff+m, dstOff+m
	}
	return nil
}

// dataRun finds the first stretch of data in [off, end) of the file: from data to hole (data == end
// when there is none). A file system that cannot tell has data everywhere. A file that ends before end
// is an error: reads would fail there too.
func dataRun(fd int, off, end int64) (data, hole int64, err error) {
	data, err = unix.Seek(fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) { // no data past off: a hole to the end of the file, or off is past it
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return 0, 0, err
		}
		if st.Size < end {
			return 0, 0, fmt.Errorf("the file ends at byte %d, before the %d bytes to copy at %d", st.Size, end-off, off)
		}
		return end, end, nil
	}
	if err != nil {
		return off, end, nil
	}
	if data >= end {
		return end, end, nil
	}
	hole, err = unix.Seek(fd, data, unix.SEEK_HOLE)
	if err != nil || hole <= data {
		hole = end
	}
	return data, hole, nil
}

// refused tells the errors of a kernel copy that mean "not between these files", as opposed to damage.
func refused(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF)
}

// move copies n bytes of data at srcOff of src to dstOff.
func (c *fileCopier) move(src *os.File, srcOff, dstOff, n int64) error {
	for _, k := range []struct {
		off  *bool
		copy func(sfd, dfd int, in, out *int64, n int) (int, error)
	}{{&c.noCFR, copyFileRange}, {&c.noSend, sendfileAt}} {
		if *k.off {
			continue
		}
		moved, err := kernelCopy(src, c.dst, srcOff, dstOff, n, k.copy)
		if err == nil || !refused(err) {
			return err
		}
		*k.off = true // this pair of file systems cannot: the next way for the rest
		srcOff, dstOff, n = srcOff+moved, dstOff+moved, n-moved
	}
	if c.buf == nil {
		c.buf = make([]byte, 1<<20)
	}
	for n > 0 {
		b := c.buf[:min(n, int64(len(c.buf)))]
		k, err := src.ReadAt(b, srcOff)
		if k < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%s: read %d bytes at %d: %w", src.Name(), len(b), srcOff, err)
		}
		if _, err := c.dst.WriteAt(b, dstOff); err != nil {
			return err
		}
		srcOff, dstOff, n = srcOff+int64(k), dstOff+int64(k), n-int64(k)
	}
	return nil
}

func copyFileRange(sfd, dfd int, in, out *int64, n int) (int, error) {
	return unix.CopyFileRange(sfd, in, dfd, out, n, 0)
}

// sendfileAt is sendfile to the offset *out of the destination (sendfile writes at the file position).
func sendfileAt(sfd, dfd int, in, out *int64, n int) (int, error) {
	if _, err := unix.Seek(dfd, *out, io.SeekStart); err != nil {
		return 0, err
	}
	k, err := unix.Sendfile(dfd, sfd, in, n)
	if k > 0 {
		*out += int64(k)
	}
	return k, err
}

// kernelCopy moves n bytes with copy and says how many it moved.
func kernelCopy(src, dst *os.File, srcOff, dstOff, n int64, copy func(sfd, dfd int, in, out *int64, n int) (int, error)) (moved int64, err error) {
	in, out := srcOff, dstOff
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for moved < n {
		k, err := copy(sfd, dfd, &in, &out, int(min(n-moved, 1<<30)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return moved, err
		}
		if k == 0 {
			return moved, fmt.Errorf("%s: the file ends at byte %d, before the %d bytes to copy at %d", src.Name(), in, n, srcOff)
		}
		moved += int64(k)
	}
	return moved, nil
}
