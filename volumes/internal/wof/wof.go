// Package wof reads the data of a file compressed by Windows' WOF file provider ("CompactOS"): a
// table of chunk offsets followed by the chunks, each compressed alone with XPRESS Huffman (4, 8 or
// 16 KiB chunks) or LZX (32 KiB), or stored as is when compression did not shrink it. This is also
// the layout of a non-solid WIM resource. The reader decodes only the chunks a read touches.
package wof

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes/internal/lzcopy"
	"github.com/vmdkmount/vmdkmount/volumes/internal/lzx"
	"github.com/vmdkmount/vmdkmount/volumes/internal/xpress"
)

// ErrCorrupt is wrapped by errors about a damaged chunk table or chunk.
var ErrCorrupt = errors.New("wof: corrupt compressed data")

// Algorithm is the FILE_PROVIDER_EXTERNAL_INFO_V1 compression format number.
type Algorithm uint32

const (
	XPRESS4K  Algorithm = 0
	LZX       Algorithm = 1
	XPRESS8K  Algorithm = 2
	XPRESS16K Algorithm = 3
)

// ChunkSize is the uncompressed size of each chunk (the last may be shorter); 0 for an unknown
// algorithm.
func (a Algorithm) ChunkSize() int {
	switch a {
	case XPRESS4K:
		return 4 << 10
	case XPRESS8K:
		return 8 << 10
	case XPRESS16K:
		return 16 << 10
	case LZX:
		return 32 << 10
	}
	return 0
}

func (a Algorithm) String() string {
	switch a {
	case XPRESS4K:
		return "XPRESS4K"
	case XPRESS8K:
		return "XPRESS8K"
	case XPRESS16K:
		return "XPRESS16K"
	case LZX:
		return "LZX"
	}
	return fmt.Sprintf("algorithm %d", uint32(a))
}

// Cache keeps decoded chunks (and pages of the chunk table) between reads. Keys are the reader's
// own: chunk i is i, table page k is -1-k. Implementations bound their size and are safe for
// concurrent use.
type Cache interface {
	Get(key int64) ([]byte, bool)
	Put(key int64, b []byte)
}

// tablePageSize is how many bytes of the chunk table one read brings in.
const tablePageSize = 4096

// Reader is the uncompressed view of one compressed stream; ReadAt is safe for concurrent use.
type Reader struct {
	src       io.ReaderAt
	srcSize   int64
	size      int64
	alg       Algorithm
	chunk     int64
	nchunks   int64
	entry     int64 // bytes per chunk-table entry
	tableSize int64
	cache     Cache
	ahead     ahead
}

// NewReader reads the compressed stream src (srcSize bytes) as size bytes compressed with alg.
// cache may be nil.
func NewReader(src io.ReaderAt, srcSize, size int64, alg Algorithm, cache Cache) (*Reader, error) {
	cs := int64(alg.ChunkSize())
	if cs == 0 {
		return nil, fmt.Errorf("%w: unknown compression %v", errors.ErrUnsupported, alg)
	}
	if size < 0 || srcSize < 0 {
		return nil, fmt.Errorf("%w: negative size", ErrCorrupt)
	}
	r := &Reader{src: src, srcSize: srcSize, size: size, alg: alg, chunk: cs, entry: 4, cache: cache}
	r.nchunks = (size + cs - 1) / cs
	if size > 0xFFFFFFFF {
		r.entry = 8
	}
	if r.nchunks > 0 {
		// The table alone must fit in the stream, which bounds everything sized from it.
		if r.nchunks-1 > srcSize/r.entry {
			return nil, fmt.Errorf("%w: %d chunks need a larger table than the %d-byte stream", ErrCorrupt, r.nchunks, srcSize)
		}
		r.tableSize = (r.nchunks - 1) * r.entry
	}
	return r, nil
}

// Size is the uncompressed size.
func (r *Reader) Size() int64 { return r.size }

// ReadAt reads uncompressed bytes; io.EOF at and past the end. The compressed bytes of the chunks a
// read needs come in with one read of the stream, and chunks the read covers whole are decoded
// straight into p, several at a time. Reads in order also start the decoding of the chunks after
// them (see ahead.go).
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("wof: negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > r.size-off {
		p, eof = p[:r.size-off], io.EOF
	}
	if r.cache != nil {
		// A batch decoding some of these chunks ahead: wait for it, then take them from the cache.
		if b := r.begin(off, len(p), off/r.chunk, (off+int64(len(p))+r.chunk-1)/r.chunk); b != nil {
			<-b.done
		}
	}
	var jobs []job
	for i := off / r.chunk; i*r.chunk < off+int64(len(p)); i++ {
		from := i * r.chunk
		lo, hi := max(off, from), min(off+int64(len(p)), from+r.chunk)
		dst := p[lo-off : hi-off]
		if r.cache != nil {
			if b, ok := r.cache.Get(i); ok {
				copy(dst, b[lo-from:])
				continue
			}
		}
		jobs = append(jobs, job{i: i, dst: dst, skip: lo - from})
	}
	if err := r.decode(jobs); err != nil {
		return 0, err
	}
	return len(p), eof
}

// job is one chunk a read decodes: into dst, skipping the first skip bytes of the chunk.
type job struct {
	i          int64
	dst        []byte
	skip       int64
	start, end int64 // compressed bytes, relative to the end of the table
	// The bytes after dst are the next chunk's, which this goroutine decodes next: a decoder may
	// write past dst there (and decode in place, without copying out of its own window).
	spill bool
}

// decode reads the compressed bytes of jobs (chunks in increasing order) in one read and decodes
// them, in parallel when there are several.
func (r *Reader) decode(jobs []job) error {
	if len(jobs) == 0 {
		return nil
	}
	var t tablePage
	for k := range jobs {
		var err error
		if jobs[k].start, jobs[k].end, err = r.bounds(&t, jobs[k].i); err != nil {
			return err
		}
	}
	first, last := jobs[0].start, jobs[len(jobs)-1].end
	if last < first || last-first > (jobs[len(jobs)-1].i-jobs[0].i+1)*r.chunk {
		return fmt.Errorf("%w: chunks %d to %d span %d compressed bytes", ErrCorrupt, jobs[0].i, jobs[len(jobs)-1].i, last-first)
	}
	raw := getRaw(int(last - first))
	defer rawPool.Put(&raw)
	if k, err := r.src.ReadAt(raw, r.tableSize+first); k < len(raw) {
		return fmt.Errorf("wof: chunks %d to %d: %w", jobs[0].i, jobs[len(jobs)-1].i, shortRead(err))
	}
	if len(jobs) == 1 {
		return r.decodeOne(&jobs[0], raw)
	}
	for k := range jobs {
		if j := &jobs[k]; j.start < first || j.end > last || j.start > j.end {
			return fmt.Errorf("%w: chunk %d lies outside the chunks around it", ErrCorrupt, j.i)
		}
	}
	// One goroutine per core, each with a contiguous share of the chunks: a goroutine per 4 KiB
	// chunk cost a noticeable part of decoding it.
	errs := make([]error, len(jobs))
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := w*len(jobs)/workers, (w+1)*len(jobs)/workers
			for k := from; k < to; k++ {
				j := &jobs[k]
				j.spill = k+1 < to && jobs[k+1].i == j.i+1 && jobs[k+1].skip == 0 && len(jobs[k+1].dst) >= maxSpill
				errs[k] = r.decodeGuarded(j, raw[j.start-first:j.end-first])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// decodeGuarded is decodeOne in a goroutine of its own, where a panic would end the process (no
// caller's recover reaches it): it becomes the chunk's error.
func (r *Reader) decodeGuarded(j *job, src []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: chunk %d: internal error on malformed data: %v", ErrCorrupt, j.i, p)
		}
	}()
	return r.decodeOne(j, src)
}

// decodeOne decodes one chunk from its compressed bytes src: straight into the job's destination
// when that is the whole chunk, else into a buffer kept in the cache.
func (r *Reader) decodeOne(j *job, src []byte) error {
	ulen := min(r.chunk, r.size-j.i*r.chunk)
	clen := int64(len(src))
	if clen > ulen || clen == 0 {
		return fmt.Errorf("%w: chunk %d of %d bytes holds %d compressed bytes", ErrCorrupt, j.i, ulen, clen)
	}
	whole := j.skip == 0 && int64(len(j.dst)) == ulen
	out := j.dst
	if !whole {
		out = make([]byte, ulen)
	}
	var err error
	switch {
	case clen == ulen:
		copy(out, src) // stored as is
	case r.alg == LZX:
		d := lzxPool.Get().(*lzx.Decoder)
		if w, ok := window(out, whole && j.spill); ok {
			err = d.DecompressWindow(w, len(out), src)
		} else {
			err = d.Decompress(out, src)
		}
		lzxPool.Put(d)
	default:
		d := xpressPool.Get().(*xpress.Decoder)
		err = d.Decompress(out, src)
		xpressPool.Put(d)
	}
	if err != nil {
		return fmt.Errorf("%w: chunk %d (%v): %w", ErrCorrupt, j.i, r.alg, err)
	}
	if !whole {
		if r.cache != nil {
			r.cache.Put(j.i, out)
		}
		copy(j.dst, out[j.skip:])
	}
	return nil
}

// maxSpill bounds what a decoder writes past a chunk's end, damaged input included (an LZX match
// of at most 257 bytes starting before the end, and a word copy's 7 bytes more): a chunk decodes in
// place only when the read's next chunk holds that much, so that the bytes past the read's end
// (another caller's, when p is part of a larger buffer) are never written.
const maxSpill = 1024

// window returns the window of a decoder writing in place at the start of dst, when spill allows
// writes past dst and dst's capacity holds a whole window.
func window(dst []byte, spill bool) (*lzcopy.Window, bool) {
	if !spill || cap(dst) < len(lzcopy.Window{}) {
		return nil, false
	}
	return (*lzcopy.Window)(dst[:len(lzcopy.Window{})]), true
}

// bounds returns where chunk i's compressed bytes start and end, relative to the end of the table.
// t keeps the table page last used, for the next chunks of the same read.
func (r *Reader) bounds(t *tablePage, i int64) (int64, int64, error) {
	var start int64
	if i > 0 {
		v, err := r.tableEntry(t, i-1)
		if err != nil {
			return 0, 0, err
		}
		start = v
	}
	end := r.srcSize - r.tableSize
	if i < r.nchunks-1 {
		v, err := r.tableEntry(t, i)
		if err != nil {
			return 0, 0, err
		}
		end = v
	}
	if start > end || end > r.srcSize-r.tableSize {
		return 0, 0, fmt.Errorf("%w: chunk %d spans bytes %d to %d of the %d after the table", ErrCorrupt, i, start, end, r.srcSize-r.tableSize)
	}
	return start, end, nil
}

// tablePage is a page of the chunk table (tablePageSize bytes) a read has in hand: each holds
// the bounds of 1024 chunks (512 with 8-byte entries), which a read then finds without going
// through the shared cache.
type tablePage struct {
	n int64 // page number + 1; 0 for none
	b []byte
}

// tableEntry returns entry k of the chunk table (the start of chunk k+1), through t and the cache.
func (r *Reader) tableEntry(t *tablePage, k int64) (int64, error) {
	at := k * r.entry
	page := at / tablePageSize
	b := t.b
	if t.n != page+1 {
		b = nil
	}
	if b == nil && r.cache != nil {
		b, _ = r.cache.Get(-1 - page)
	}
	if b == nil {
		n := min(tablePageSize, r.tableSize-page*tablePageSize)
		b = make([]byte, n)
		if k, err := r.src.ReadAt(b, page*tablePageSize); k < len(b) {
			return 0, fmt.Errorf("wof: chunk table: %w", shortRead(err))
		}
		if r.cache != nil {
			r.cache.Put(-1-page, b)
		}
	}
	t.n, t.b = page+1, b
	in := at - page*tablePageSize
	if r.entry == 8 {
		v := binary.LittleEndian.Uint64(b[in:])
		if v > 1<<62 {
			return 0, fmt.Errorf("%w: chunk table entry %d is %#x", ErrCorrupt, k, v)
		}
		return int64(v), nil
	}
	return int64(binary.LittleEndian.Uint32(b[in:])), nil
}

// rawPool keeps the buffers of compressed bytes between reads: a FUSE read of 1 MiB of
// XPRESS4K brings in about half as much, which allocated and cleared would cost a few percent of
// decoding it.
var rawPool sync.Pool

// getRaw returns a buffer of n bytes from rawPool, or a new one.
func getRaw(n int) []byte {
	if p, ok := rawPool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n)
}

var (
	xpressPool = sync.Pool{New: func() any { return new(xpress.Decoder) }}
	lzxPool    = sync.Pool{New: func() any { return new(lzx.Decoder) }}
)

// shortRead is the error of a read that returned fewer bytes than asked.
func shortRead(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
