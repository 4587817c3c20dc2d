package wof

import (
	"runtime"
	"sync"
)

// Read-ahead: a reader going through a file in order gets the chunks after its read decoded in
// the background, on all cores, while it uses the ones it has. A program reading 32 KiB at a time
// (io.Copy) asks for one LZX chunk per read, which alone would decode on one core; FUSE reads of
// a mount without the raised kernel read-ahead come 128 KiB at a time. The decoded chunks go to the
// Reader's cache, whose budget bounds what is kept; only a Reader with a cache reads ahead.
const (
	aheadMin = 256 << 10 // bytes decoded per batch, at least (8 LZX chunks, 64 XPRESS4K ones)
	aheadMax = 1 << 20   // and at most, even after reads of more
	// Reads of this size or more start no batch: they decode their own chunks on all cores, and
	// come from the kernel's read-ahead, several at a time (FUSE reads of 1016 KiB, four or more in
	// flight), so a batch would only decode chunks a read already in flight asks for, through the
	// cache (a buffer allocated per chunk and one more copy), while the read waits for it.
	aheadOff = 512 << 10
)

// aheadSlots bounds the batches being decoded at once across all Readers, so that many files read
// in parallel add no more goroutines and transient buffers than a few batches.
var aheadSlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// ahead is a Reader's read-ahead state.
type ahead struct {
	mu      sync.Mutex
	next    int64  // where the last read ended: a read starting there continues a sequence
	claimed int64  // chunks before this one are being read, or were, by a read
	upTo    int64  // chunks before this one have been decoded ahead, or are being
	run     *batch // the batch being decoded ahead, if any
}

// batch is chunks [first, last) being decoded into the cache; done closes when they are.
type batch struct {
	first, last int64
	done        chan struct{}
}

// begin notes a read of n bytes at off, covering chunks [lo, hi), and returns the batch the read
// must wait for (it decodes some of the read's chunks), or nil. A read that continues a sequence
// (a second read at least) starts the next batch when less than a batch is decoded ahead of it.
func (r *Reader) begin(off int64, n int, lo, hi int64) *batch {
	a := &r.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	seq := off > 0 && off == a.next
	a.next = off + int64(n)
	if seq {
		a.claimed = max(a.claimed, hi)
	} else {
		a.claimed = hi
	}
	var wait *batch
	if b := a.run; b != nil {
		select {
		case <-b.done:
			a.run = nil
		default:
			if b.first < hi && lo < b.last {
				wait = b
			}
		}
	}
	if !seq {
		// Random access: whatever was decoded ahead stays in the cache as any chunk does, and
		// nothing more is, until reads run in order again.
		a.upTo = 0
		return wait
	}
	if a.run == nil && n < aheadOff {
		r.startBatch(min(2*int64(n), aheadMax))
	}
	return wait
}

// startBatch decodes up to size bytes of chunks after every chunk read so far, unless as much is
// already decoded ahead or all slots are busy. a.mu is held.
func (r *Reader) startBatch(size int64) {
	a := &r.ahead
	count := max(size, aheadMin) / r.chunk
	first := max(a.claimed, a.upTo)
	if first-a.claimed >= count { // a batch's worth is ready ahead of the reads
		return
	}
	last := min(first+count, r.nchunks)
	if first >= last {
		return
	}
	select {
	case aheadSlots <- struct{}{}:
	default:
		return
	}
	b := &batch{first: first, last: last, done: make(chan struct{})}
	a.run, a.upTo = b, last
	go func() {
		defer func() { <-aheadSlots }()
		defer close(b.done)
		r.decodeAhead(b)
	}()
}

// decodeAhead decodes b's chunks into the cache. Errors are left for the reads that reach a chunk
// (it is not cached, so they decode it and report it), a panic included.
func (r *Reader) decodeAhead(b *batch) {
	defer func() { _ = recover() }()
	jobs := make([]job, 0, b.last-b.first)
	for i := b.first; i < b.last; i++ {
		if _, ok := r.cache.Get(i); ok {
			continue
		}
		jobs = append(jobs, job{i: i, dst: make([]byte, min(r.chunk, r.size-i*r.chunk))})
	}
	if r.decode(jobs) != nil {
		return
	}
	for _, j := range jobs {
		r.cache.Put(j.i, j.dst)
	}
}
