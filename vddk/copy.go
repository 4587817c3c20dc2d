package vddk

import (
	"bytes"
	"io"
	"os"
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
	if f := sparseTarget(w); f != nil {
		return d.copyToFile(f, plan, progress)
	}
	return d.copyToStream(w, plan, progress)
}

// sparseTarget returns w as a file when it is an empty regular file positioned at its start: then the
// copy writes at offsets, leaves holes, and sets the size at the end.
func sparseTarget(w io.Writer) *os.File {
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

// copyToFile copies the planned chunks into the empty file f, copyDepth at once in any order: each
// worker reads and writes its own chunk at its own offset. Ranges that lie in one file (flat extents,
// runs of uncompressed grains or clusters, in any link) go file to file inside the kernel, and holes
// of that file stay holes; the rest is read and written without its zero runs.
func (d *Disk) copyToFile(f *os.File, plan []*chunk, progress Progress) error {
	for i, c := range plan {
		c.index = i
	}
	work := make(chan *chunk)
	results := make(chan *chunk, copyDepth)
	var stop atomic.Bool
	go func() {
		for _, c := range plan {
			if stop.Load() {
				break
			}
			work <- c
		}
		close(work)
	}()
	var wg sync.WaitGroup
	for range copyDepth {
		wg.Go(func() {
			cp := newFileCopier(f)
			defer cp.close()
			buf := make([]byte, copyChunkSize) // one buffer per worker for the whole copy
			for c := range work {
				c.err = d.copyChunk(cp, buf, c)
				results <- c
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	var first error
	// Progress is where the disk is copied up to: the end of the last chunk that all before it followed.
	finished := make([]bool, len(plan))
	next := 0
	for c := range results {
		if c.err != nil && first == nil {
			first = c.err
			stop.Store(true)
		}
		finished[c.index] = true
		moved := false
		for next < len(plan) && finished[next] {
			next, moved = next+1, true
		}
		if progress != nil && first == nil && moved {
			progress(plan[next-1].off+plan[next-1].n, d.size)
		}
	}
	if first != nil {
		return first
	}
	if err := f.Truncate(d.size); err != nil {
		return err
	}
	_, err := f.Seek(d.size, io.SeekStart) // where sequential writes of the whole disk would have left it
	return err
}

// copyChunk copies one chunk into the file at the same offset: as one file span when it is one, else
// split into copyUnit pieces, consecutive spans of one file merged, the others read through the chain.
func (d *Disk) copyChunk(cp *fileCopier, buf []byte, c *chunk) error {
	if src, srcOff, ok := d.FileSpan(c.off, c.n); ok {
		return cp.copyRange(src, srcOff, c.off, c.n)
	}
	end := c.off + c.n
	var src *os.File // the current span's file; nil for a run to read
	var srcOff int64
	runStart := c.off
	flush := func(to int64) error {
		if to == runStart {
			return nil
		}
		var err error
		if src != nil {
			err = cp.copyRange(src, srcOff, runStart, to-runStart)
		} else {
			b := buf[:to-runStart]
			if err = d.readLink(0, b, runStart); err == nil {
				err = writeSparseAt(cp.dst, b, runStart)
			}
		}
		runStart = to
		return err
	}
	for u := c.off; u < end; {
		ue := min(end, (u/copyUnit+1)*copyUnit)
		sf, fo, ok := d.FileSpan(u, ue-u)
		continues := ok && sf == src && fo == srcOff+(u-runStart) || !ok && src == nil
		if !continues {
			if err := flush(u); err != nil {
				return err
			}
			src, srcOff = nil, 0
			if ok {
				src, srcOff = sf, fo
			}
		}
		u = ue
	}
	return flush(end)
}

// copyToStream writes the planned chunks to w in order, with zeros between them: copyDepth readers run
// ahead of the writer.
func (d *Disk) copyToStream(w io.Writer, plan []*chunk, progress Progress) error {
	// A fixed ring of buffers, reused for the whole copy: fresh memory would page-fault inside every read.
	free := make(chan []byte, copyDepth+2)
	for range copyDepth + 2 {
		free <- make([]byte, copyChunkSize)
	}
	work := make(chan *chunk, copyDepth)
	for _, c := range plan {
		c.done = make(chan struct{})
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range copyDepth {
		wg.Go(func() {
			for c := range work {
				if !stop.Load() {
					c.err = d.readLink(0, c.buf, c.off)
				}
				close(c.done)
			}
		})
	}
	go func() {
		// Feed in order, giving each chunk its buffer before it is read: the writer frees buffers in the
		// same order, so a chunk never waits for a buffer held by a later one.
		for _, c := range plan {
			c.buf = (<-free)[:c.n]
			work <- c
		}
		close(work)
	}()
	defer wg.Wait()

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
		if werr == nil {
			werr = writeZeros(c.off - pos)
		}
		if werr == nil {
			_, werr = w.Write(c.buf)
		}
		if werr != nil {
			stop.Store(true)
		}
		pos = c.off + c.n
		c.release(free)
		if progress != nil && werr == nil {
			progress(pos, d.size)
		}
	}
	if werr == nil {
		werr = writeZeros(d.size - pos)
	}
	return werr
}

// chunk is one allocated piece of a CopyRaw plan.
type chunk struct {
	off, n int64
	index  int // in the plan
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

// writeSparseAt writes b at off, leaving 64 KiB runs of zeros unwritten (holes of a new file).
func writeSparseAt(f *os.File, b []byte, off int64) error {
	const run = 64 << 10
	var zero [run]byte
	for len(b) > 0 {
		n := min(run, len(b))
		if !bytes.Equal(b[:n], zero[:n]) {
			// Write the whole non-zero stretch in one call.
			for n < len(b) {
				k := min(run, len(b)-n)
				if bytes.Equal(b[n:n+k], zero[:k]) {
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
