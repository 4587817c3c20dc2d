package vddk

import (
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	copyChunkSize = 2 << 20 // bytes per read: 32 default grains, inflated in parallel
	copyDepth     = 2       // chunks read ahead of the writer (stream output), or copied at once (file output)
	// copyUnit is the granule at which a chunk that is not one file span is split into spans and reads:
	// the usual grain and cluster size.
	copyUnit = 64 << 10
)

// CopyRaw writes the whole virtual disk as a raw image to w, in order. Unallocated ranges are not read.
// When w is an empty regular file positioned at its start, zero ranges are skipped and the result is a
// sparse file of the disk's size (as qemu-img convert makes); otherwise zeros are written.
func (d *Disk) CopyRaw(w io.Writer) error { return d.CopyRawProgress(w, nil) }

// CopyRawProgress is CopyRaw telling progress (when not nil) how far it got.
func (d *Disk) CopyRawProgress(w io.Writer, progress Progress) error {
	blocks, err := d.AllocatedBlocks(0, uint64(d.size)/SectorSize, 128)
	if err != nil {
		return err
	}
	// The allocated ranges cut into chunks aligned on copyChunkSize, which keeps them inside a format's
	// blocks (1 MiB and up) and so mostly one file span each.
	var plan []*chunk
	for _, b := range blocks {
		start, end := int64(b.Offset)*SectorSize, min(int64(b.Offset+b.Length)*SectorSize, d.size)
		for o := start; o < end; {
			e := min(end, (o/copyChunkSize+1)*copyChunkSize)
			plan = append(plan, &chunk{off: o, n: e - o})
			o = e
		}
	}
	return d.copyChunks(w, SparseTarget(w), plan, progress)
}

// SparseTarget returns w as a file when it is an empty regular file positioned at its start: then the
// copy writes at offsets, leaves holes, and sets the size at the end.
func SparseTarget(w io.Writer) *os.File {
	f, _ := w.(*os.File)
	if f == nil {
		return nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
		return nil
	}
	if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		return nil
	}
	return f
}

// copyChunks writes the planned chunks in order: copyDepth readers run ahead of the one writer (writes
// to one file are serialized by the kernel anyway: more writers only contend for its lock). Into a
// file f, ranges that lie in one file (flat extents, runs of uncompressed grains or clusters, in any
// link) are not read here: the writer has the kernel copy them file to file, skipping that file's
// holes, and what is read is written without its zero runs. Into a stream w, zeros fill the gaps.
func (d *Disk) copyChunks(w io.Writer, f *os.File, plan []*chunk, progress Progress) error {
	// A fixed ring of buffers, reused for the whole copy: fresh memory would page-fault inside every read.
	free := make(chan []byte, copyDepth+2)
	for range copyDepth + 2 {
		free <- make([]byte, copyChunkSize)
	}
	work := make(chan *chunk, copyDepth)
	for _, c := range plan {
		c.done = make(chan struct{})
	}
	cpu := newCoreTokens(f != nil)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range copyDepth {
		wg.Go(func() {
			for c := range work {
				if !stop.Load() {
					cpu.take()
					c.err = d.prepareChunk(c, f != nil)
					cpu.give()
				}
				close(c.done)
			}
		})
	}
	go func() {
		// Feed in order, giving each chunk its buffer before it is read: the writer frees buffers in the
		// same order, so a chunk never waits for a buffer held by a later one.
		for _, c := range plan {
			// A chunk that is one file span as a whole (most of a flat or freshly converted image) needs
			// neither a buffer nor a reader: the writer need not wait for one to be scheduled.
			if f != nil && !stop.Load() {
				if src, srcOff, ok := d.FileSpan(c.off, c.n); ok {
					c.segs = append(c.segs[:0], segment{off: c.off, n: c.n, src: src, srcOff: srcOff})
					close(c.done)
					continue
				}
			}
			c.buf = (<-free)[:c.n]
			work <- c
		}
		close(work)
	}()
	defer wg.Wait()

	var cp *fileCopier
	if f != nil {
		cp = &fileCopier{dst: f}
	}
	zeros := make([]byte, 1<<20)
	writeZeros := func(n int64) error {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if _, err := w.Write(zeros[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	var werr error
	var pos int64
	for _, c := range plan {
		<-c.done
		if werr == nil {
			werr = c.err
		}
		cpu.take()
		switch {
		case werr != nil:
		case f != nil:
			werr = cp.writeChunk(c)
		default:
			if werr = writeZeros(c.off - pos); werr == nil {
				_, werr = w.Write(c.buf)
			}
		}
		cpu.give()
		if werr != nil {
			stop.Store(true)
		}
		pos = c.off + c.n
		c.release(free)
		if progress != nil && werr == nil {
			progress(pos, d.size)
		}
	}
	switch {
	case werr != nil:
	case f != nil:
		if werr = f.Truncate(d.size); werr == nil {
			_, werr = f.Seek(d.size, io.SeekStart) // where sequential writes of the whole disk leave it
		}
	default:
		werr = writeZeros(d.size - pos)
	}
	// The tail after the last allocated chunk (all of an empty disk) is done too: say so.
	if progress != nil && werr == nil && pos < d.size {
		progress(d.size, d.size)
	}
	return werr
}

// coreTokens are a copy's tokens, one per core, taken by a reader while it reads (and inflates) a chunk
// and by the writer while it writes one. A copy into a file is bound by the writer's copies into it;
// left free, the readers took both cores whenever they inflated, and the writer waited for its turn
// (zstd-compressed qcow2 copied 9% slower, streamOptimized VMDK 4%). nil (a copy into a stream, whose
// writes may wait on whoever reads it: no core to keep) hands out nothing.
type coreTokens chan struct{}

func newCoreTokens(file bool) coreTokens {
	if !file {
		return nil
	}
	return make(coreTokens, runtime.GOMAXPROCS(0))
}

func (c coreTokens) take() {
	if c != nil {
		c <- struct{}{}
	}
}

func (c coreTokens) give() {
	if c != nil {
		<-c
	}
}

// prepareChunk cuts a chunk into segments and reads those that must be read into its buffer. With
// spans, the chunk (not one file span as a whole) is split into copyUnit pieces, consecutive spans of
// one file merged, the other pieces read through the chain.
func (d *Disk) prepareChunk(c *chunk, spans bool) error {
	c.segs = c.segs[:0]
	if spans { // the feeder found the chunk is not one span as a whole
		end := c.off + c.n
		for u := c.off; u < end; {
			ue := min(end, (u/copyUnit+1)*copyUnit)
			src, srcOff, ok := d.FileSpan(u, ue-u)
			if !ok {
				src, srcOff = nil, 0
			}
			if k := len(c.segs) - 1; k >= 0 && c.segs[k].src == src && (!ok || c.segs[k].srcOff+c.segs[k].n == srcOff) {
				c.segs[k].n += ue - u // continues the last segment
			} else {
				c.segs = append(c.segs, segment{off: u, n: ue - u, src: src, srcOff: srcOff})
			}
			u = ue
		}
	} else {
		c.segs = append(c.segs, segment{off: c.off, n: c.n})
	}
	for _, s := range c.segs {
		if s.src == nil {
			if err := d.readLink(0, c.buf[s.off-c.off:][:s.n], s.off); err != nil {
				return err
			}
		}
	}
	return nil
}

// chunk is one allocated piece of a CopyRaw plan.
type chunk struct {
	off, n int64
	segs   []segment
	buf    []byte
	err    error
	done   chan struct{}
}

// segment is a range of a chunk: in the file src at srcOff, or (src nil) read into the chunk's buffer.
type segment struct {
	off, n int64
	src    *os.File
	srcOff int64
}

// release gives the chunk's buffer back to the ring.
func (c *chunk) release(free chan []byte) {
	if c.buf != nil {
		free <- c.buf[:cap(c.buf)]
		c.buf = nil
	}
}

// writeSparseAt writes b at off, leaving 64 KiB runs of zeros unwritten (holes of a new file).
func writeSparseAt(f *os.File, b []byte, off int64) error {
	const run = 64 << 10
	for len(b) > 0 {
		n := min(run, len(b))
		if !IsZero(b[:n]) {
			// Write the whole non-zero stretch in one call.
			for n < len(b) {
				k := min(run, len(b)-n)
				if IsZero(b[n : n+k]) {
					break
				}
				n += k
			}
			if _, err := f.WriteAt(b[:n], off); err != nil {
				return err
			}
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
