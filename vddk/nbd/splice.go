package nbd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/vmdkmount/vmdkmount/vddk"
	"golang.org/x/sys/unix"
)

// fileSink is where CopyTo's readers put read data: a file, at the offsets the data has on the disk.
type fileSink struct {
	f        *os.File
	fd       int
	noSplice atomic.Bool // the file refused a splice: data goes through memory from then on
}

// write puts p at off unless it is all zeros (the file reads as zeros there already).
func (fs *fileSink) write(p []byte, off int64) error {
	if vddk.IsZero(p) {
		return nil
	}
	_, err := fs.f.WriteAt(p, off)
	return err
}

// fileError is a failure of the destination file, not of the connection, while a reply was being stored.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// payload reads k bytes of read data for cl, at byte at of its request: into cl.buf, or for a call with a
// file destination into that file (spliced from the socket when the connection allows it).
func (c *conn) payload(br *bufio.Reader, cl *call, at, k uint64) error {
	if cl.to == nil {
		_, err := io.ReadFull(br, cl.buf[at:at+k])
		return err
	}
	off := int64(cl.off + at)
	for k > 0 {
		if c.raw == nil || cl.to.noSplice.Load() {
			return c.viaMemory(br, cl, off, k)
		}
		if b := uint64(br.Buffered()); b > 0 { // what the buffered reader holds goes by memory
			n := min(b, k)
			if err := c.viaMemory(br, cl, off, n); err != nil {
				return err
			}
			off, k = off+int64(n), k-n
			continue
		}
		n, err := c.splice(cl.to, off, int(min(k, spliceMax)))
		if errors.Is(err, errNoSplice) {
			return c.viaMemory(br, cl, off, k)
		}
		if err != nil {
			return err
		}
		off, k = off+int64(n), k-uint64(n)
	}
	return nil
}

// viaMemory reads n bytes into a buffer of the connection's and writes them to the call's file at off.
func (c *conn) viaMemory(br *bufio.Reader, cl *call, off int64, n uint64) error {
	for n > 0 {
		k := min(n, spliceMax)
		if len(c.bounce) < int(k) {
			c.bounce = make([]byte, spliceMax)
		}
		b := c.bounce[:k]
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		if err := cl.to.write(b, off); err != nil {
			return &fileError{err}
		}
		c.viaMem += int64(k)
		off, n = off+int64(k), n-k
	}
	return nil
}

// spliceMax is the most one splice moves: the pipe's size.
const spliceMax = 1 << 20

// errNoSplice says the kernel cannot splice this socket or file: the data goes through memory.
var errNoSplice = errors.New("splice not supported")

// splice moves up to n bytes from the socket into the file at off through the connection's pipe.
func (c *conn) splice(to *fileSink, off int64, n int) (int, error) {
	if c.pipe[0] == 0 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			c.raw = nil
			return 0, errNoSplice
		}
		unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, spliceMax) // smaller pipes only mean more calls
		c.pipe = p
	}
	var got int
	var serr error
	err := c.raw.Read(func(fd uintptr) bool {
		var m int64
		m, serr = unix.Splice(int(fd), nil, c.pipe[1], nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		got = int(m)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	switch {
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		c.raw = nil
		return 0, errNoSplice
	case err != nil:
		return 0, err
	case got == 0:
		return 0, io.ErrUnexpectedEOF
	}
	for left := got; left > 0; {
		m, err := spliceOut(c.pipe[0], to.fd, &off, left)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EINVAL { // a file that takes no splice (or opened O_APPEND)
			to.noSplice.Store(true)
			return got, c.drainPipe(to, off, left)
		}
		if err == nil && m == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return 0, &fileError{fmt.Errorf("write: %w", err)}
		}
		left -= int(m)
	}
	return got, nil
}

// spliceOut moves n bytes from a pipe into a file at *off (a variable: tests play a file that refuses).
var spliceOut = func(pipe, fd int, off *int64, n int) (int64, error) {
	return unix.Splice(pipe, nil, fd, off, n, unix.SPLICE_F_MOVE)
}

// drainPipe writes the n bytes the pipe holds to the file at off, through memory.
func (c *conn) drainPipe(to *fileSink, off int64, n int) error {
	if len(c.bounce) < spliceMax {
		c.bounce = make([]byte, spliceMax)
	}
	for n > 0 {
		m, err := unix.Read(c.pipe[0], c.bounce[:n])
		if err == unix.EINTR {
			continue
		}
		if err == nil && m == 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("reading back the splice pipe: %w", err)
		}
		if err := to.write(c.bounce[:m], off); err != nil {
			return &fileError{err}
		}
		off, n = off+int64(m), n-m
	}
	return nil
}

// capReader hands out at most limit bytes a read (none when 0). The reply reader's buffer sits on one,
// so that while a copy runs, filling the buffer for a reply header does not take the read data behind
// it, which would then go to the file through memory instead of being spliced.
type capReader struct {
	r     io.Reader
	limit int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.limit > 0 && len(p) > c.limit {
		p = p[:c.limit]
	}
	return c.r.Read(p)
}

// capFills bounds the reply reader's next fills to n bytes (0: unbounded) while a copy runs.
func (c *conn) capFills(n int) {
	if c.hdr != nil && c.copying.Load() {
		c.hdr.limit = n
	}
}

// closePipe releases the splice pipe (the reader's, once it has exited).
func (c *conn) closePipe() {
	if c.pipe[0] != 0 {
		unix.Close(c.pipe[0])
		unix.Close(c.pipe[1])
		c.pipe = [2]int{}
	}
}

// rawConn is the socket under a plain connection, nil under TLS (whose bytes must be decrypted in memory).
func rawConn(nc net.Conn) syscall.RawConn {
	if sc, ok := nc.(syscall.Conn); ok { // *tls.Conn is not one
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}
