package vddk

import (
	"bytes"
	"io"
	"os"
	"sync"
	"syscall"
)

const (
	copyChunkSize = 2 << 20 // bytes per read: 32 default grains, inflated in parallel
	copyDepth     = 2       // chunks read ahead of the writer
)

// CopyRaw writes the whole virtual disk as a raw image to w, in order. Unallocated ranges are not read.
// When w is an empty regular file positioned at its start, zero ranges are skipped with a seek and the
// result is a sparse file of the disk's size (as qemu-img convert makes); otherwise zeros are written.
func (d *Disk) CopyRaw(w io.Writer) error { return d.CopyRawProgress(w, nil) }

// CopyRawProgress is CopyRaw telling progress (when not nil) how far it got.
func (d *Disk) CopyRawProgress(w io.Writer, progress Progress) error {
	f, _ := w.(*os.File)
	sparse := false
	if f != nil {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() == 0 {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos == 0 {
				sparse = true
			}
		}
	}
	blocks, err := d.AllocatedBlocks(0, uint64(d.size)/SectorSize, 128)
	if err != nil {
		return err
	}
	// Plan the chunks: allocated ranges cut into copyChunk pieces; holes in between.
	var plan []*chunk
	var pos int64
	addHole := func(end int64) {
		if end > pos {
			plan = append(plan, &chunk{off: pos, n: end - pos, hole: true})
			pos = end
		}
	}
	for _, b := range blocks {
		start, end := int64(b.Offset)*SectorSize, min(int64(b.Offset+b.Length)*SectorSize, d.size)
		addHole(start)
		for o := start; o < end; o += copyChunkSize {
			c := &chunk{off: o, n: min(copyChunkSize, end-o)}
			if sparse {
				c.src, c.srcOff = d.flatSpan(c.off, c.n)
			}
			plan = append(plan, c)
		}
		pos = end
	}
	addHole(d.size)

	// A fixed ring of buffers, reused for the whole copy: fresh memory would page-fault inside every read.
	free := make(chan []byte, copyDepth+2)
	for range copyDepth + 2 {
		free <- make([]byte, copyChunkSize)
	}
	work := make(chan *chunk, copyDepth)
	for _, c := range plan {
		c.done = make(chan struct{})
	}
	var wg sync.WaitGroup
	for range copyDepth {
		wg.Go(func() {
			for c := range work {
				c.err = d.readLink(0, c.buf, c.off)
				close(c.done)
			}
		})
	}
	go func() {
		// Feed in order, giving each chunk its buffer before it is read: the writer frees buffers in the
		// same order, so a chunk never waits for a buffer held by a later one.
		for _, c := range plan {
			if c.hole || c.src != nil {
				close(c.done) // holes are seeked over; flat ranges are copied by the kernel
				continue
			}
			c.buf = (<-free)[:c.n]
			work <- c
		}
		close(work)
	}()
	defer wg.Wait()

	zeros := make([]byte, 1<<20)
	var werr error
	for _, c := range plan {
		<-c.done
		if werr != nil {
			c.release(free)
			continue
		}
		switch {
		case c.err != nil:
			werr = c.err
		case c.hole && sparse:
			_, werr = f.Seek(c.n, io.SeekCurrent)
		case c.hole:
			for left := c.n; left > 0 && werr == nil; left -= int64(len(zeros)) {
				_, werr = w.Write(zeros[:min(left, int64(len(zeros)))])
			}
		case c.src != nil:
			werr = sendRange(f, c.src, c.srcOff, c.n)
		case sparse:
			werr = writeSparse(f, c.buf)
		default:
			_, werr = w.Write(c.buf)
		}
		c.release(free)
		if progress != nil && werr == nil {
			progress(c.off+c.n, d.size)
		}
	}
	if werr == nil && sparse {
		werr = f.Truncate(d.size)
	}
	return werr
}

// chunk is one piece of a CopyRaw plan: a range to read, or a hole.
type chunk struct {
	off, n int64
	hole   bool
	src    *os.File // set when the range is one flat extent's file: copied with sendfile
	srcOff int64
	buf    []byte
	err    error
	done   chan struct{}
}

// release gives the chunk's buffer back to the ring.
func (c *chunk) release(free chan []byte) {
	if c.buf != nil {
		free <- c.buf[:cap(c.buf)]
		c.buf = nil
	}
}

// writeSparse writes b at the current position, seeking over 64 KiB runs of zeros.
func writeSparse(f *os.File, b []byte) error {
	const run = 64 << 10
	var zero [run]byte
	for len(b) > 0 {
		n := min(run, len(b))
		if bytes.Equal(b[:n], zero[:n]) {
			if _, err := f.Seek(int64(n), io.SeekCurrent); err != nil {
				return err
			}
		} else {
			// Write the whole non-zero stretch in one call.
			m := n
			for m < len(b) {
				k := min(run, len(b)-m)
				if bytes.Equal(b[m:m+k], zero[:k]) {
					break
				}
				m += k
			}
			if _, err := f.Write(b[:m]); err != nil {
				return err
			}
			n = m
		}
		b = b[n:]
	}
	return nil
}

// flatSpan returns the file and offset holding [off, off+n) when that range is one flat extent of the
// top link (which then hides its parents there), so it can be copied file to file by the kernel.
func (d *Disk) flatSpan(off, n int64) (*os.File, int64) {
	l := d.links[0]
	k := l.extentAt(off)
	start, end := l.extentRange(k)
	if off+n > end {
		return nil, 0
	}
	if e, ok := l.exts[k].(*flatExtent); ok {
		return e.f, e.base + off - start
	}
	if e, ok := l.exts[k].(*foreignExtent); ok {
		if f, fo, _, ok := e.span(off-start, n); ok {
			return f, fo
		}
	}
	return nil, 0
}

// sendRange copies n bytes at off of src to dst's current position inside the kernel (sendfile),
// without passing through our memory.
func sendRange(dst, src *os.File, off, n int64) error {
	for n > 0 {
		k, err := syscall.Sendfile(int(dst.Fd()), int(src.Fd()), &off, int(min(n, 1<<30)))
		if err != nil {
			return err
		}
		if k == 0 {
			return io.ErrUnexpectedEOF
		}
		n -= int64(k)
	}
	return nil
}
