package vddk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// fileCopier copies ranges of image files into one destination file at given offsets inside the
// kernel, so that several copiers fill one file at once (sendfile writes at the file position, which
// they would share): copy_file_range, which shares the blocks on file systems that can (btrfs, XFS)
// and copies inside the kernel on the others; between file systems, splice through a pipe of its own;
// where a file system refuses that too, pread and pwrite. Holes of the source stay holes.
type fileCopier struct {
	dst      *os.File
	pr, pw   int // the pipe; -1 until first used
	pipeSize int
	noCFR    bool // copy_file_range refused this pair of files
	noSplice bool
	buf      []byte // the fallback's buffer
}

func newFileCopier(dst *os.File) *fileCopier { return &fileCopier{dst: dst, pr: -1, pw: -1} }

func (c *fileCopier) close() {
	if c.pr >= 0 {
		unix.Close(c.pr)
		unix.Close(c.pw)
		c.pr, c.pw = -1, -1
	}
}

// copyRange copies n bytes at srcOff of src to dstOff of the destination, skipping src's holes.
func (c *fileCopier) copyRange(src *os.File, srcOff, dstOff, n int64) error {
	fd := int(src.Fd())
	end := srcOff + n
	for srcOff < end {
		data, hole, err := dataRun(fd, srcOff, end)
		if err != nil {
			return fmt.Errorf("%s: %w", src.Name(), err)
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
	if !c.noCFR {
		moved, err := c.copyFileRange(src, srcOff, dstOff, n)
		switch {
		case err == nil:
			return nil
		case refused(err):
			c.noCFR = true
			srcOff, dstOff, n = srcOff+moved, dstOff+moved, n-moved
		default:
			return err
		}
	}
	if !c.noSplice {
		moved, err := c.splice(src, srcOff, dstOff, n)
		switch {
		case err == nil:
			return nil
		case refused(err):
			c.noSplice = true // this pair of file systems cannot splice: copy the rest through memory
			srcOff, dstOff, n = srcOff+moved, dstOff+moved, n-moved
		default:
			return err
		}
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

// copyFileRange copies n bytes with copy_file_range and says how many it copied.
func (c *fileCopier) copyFileRange(src *os.File, srcOff, dstOff, n int64) (moved int64, err error) {
	in, out := srcOff, dstOff
	sfd, dfd := int(src.Fd()), int(c.dst.Fd())
	for moved < n {
		k, err := unix.CopyFileRange(sfd, &in, dfd, &out, int(min(n-moved, 1<<30)), 0)
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

// splice moves n bytes through the pipe and says how many reached the destination.
func (c *fileCopier) splice(src *os.File, srcOff, dstOff, n int64) (moved int64, err error) {
	if c.pr < 0 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return 0, err
		}
		c.pr, c.pw = p[0], p[1]
		// A bigger pipe means fewer calls; the default 64 KiB serves when the system refuses.
		sz, err := unix.FcntlInt(uintptr(c.pw), unix.F_SETPIPE_SZ, 1<<20)
		if err != nil {
			sz, err = unix.FcntlInt(uintptr(c.pw), unix.F_GETPIPE_SZ, 0)
		}
		if err != nil || sz <= 0 {
			sz = 64 << 10
		}
		c.pipeSize = sz
	}
	in, out := srcOff, dstOff
	sfd, dfd := int(src.Fd()), int(c.dst.Fd())
	for moved < n {
		k, err := unix.Splice(sfd, &in, c.pw, nil, int(min(n-moved, int64(c.pipeSize))), unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return moved, err
		}
		if k == 0 {
			return moved, fmt.Errorf("%s: the file ends at byte %d, before the %d bytes to copy at %d", src.Name(), in, n, srcOff)
		}
		for left := k; left > 0; {
			j, err := unix.Splice(c.pr, nil, dfd, &out, int(left), unix.SPLICE_F_MOVE)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				// Bytes are left in the pipe: put them where they belong before giving up on splice.
				if derr := c.drain(left, out); derr != nil {
					return moved, derr
				}
				return moved + k, err
			}
			left -= j
		}
		moved += k
	}
	return moved, nil
}

// drain writes the n bytes left in the pipe to dstOff through memory.
func (c *fileCopier) drain(n, dstOff int64) error {
	b := make([]byte, n)
	for got := 0; got < len(b); {
		k, err := unix.Read(c.pr, b[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if k == 0 {
			return io.ErrUnexpectedEOF
		}
		got += k
	}
	_, err := c.dst.WriteAt(b, dstOff)
	return err
}
