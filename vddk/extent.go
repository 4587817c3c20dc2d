package vddk

import (
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
)

// SectorSize is the VMDK sector: every offset in headers, tables and descriptors counts these.
const SectorSize = 512

// allocState says what backs a range of an extent.
type allocState uint8

const (
	allocNone allocState = iota // not allocated here: the parent link supplies it, zeros at the base
	allocZero                   // explicitly zero (zeroed grain, ZERO extent): never read the parent
	allocData                   // data stored in this link
)

// parentReader reads a range of the parent link at the same virtual offset.
type parentReader func(p []byte, off int64) error

// extent is one extent of a link, addressed in bytes relative to the extent's start.
type extent interface {
	// readAt fills p from offset off; ranges this extent does not hold are read through parent.
	readAt(p []byte, off int64, parent parentReader) error
	// alloc reports the allocation state of [off, off+n) in runs, in increasing order.
	alloc(off, n int64, emit func(off, n int64, st allocState)) error
	info() ExtentInfo
	close() error
}

// ExtentInfo describes an opened extent, for Info.
type ExtentInfo struct {
	ExtentLine
	Path            string `json:"path,omitempty"`    // file opened for it
	Format          string `json:"format"`            // flat, sparse, streamOptimized, vmfsSparse (COWD), seSparse, zero
	Version         uint32 `json:"version,omitempty"` // sparse header version
	Flags           uint32 `json:"flags,omitempty"`
	GrainSectors    int64  `json:"grain_sectors,omitempty"`
	Compressed      bool   `json:"compressed,omitempty"`
	UncleanShutdown bool   `json:"unclean_shutdown,omitempty"`
	ActualSize      int64  `json:"actual_size,omitempty"` // bytes the host file takes on its filesystem; filled in by `vmdk info`
}

// flatExtent is a region of a file (FLAT, VMFS): every byte is data.
type flatExtent struct {
	f    *os.File
	base int64 // byte offset of the extent inside the file
	size int64
	inf  ExtentInfo
}

func (e *flatExtent) readAt(p []byte, off int64, _ parentReader) error {
	_, err := e.f.ReadAt(p, e.base+off)
	if err == io.EOF {
		return newErr(ErrFileError, e.inf.Path, "flat extent ends before offset %d: the file is shorter than the descriptor says", e.base+off+int64(len(p)))
	}
	if err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "read")
	}
	return nil
}

// alloc reports holes in the host file as zero ranges (as qemu does with SEEK_DATA), so that copies skip
// them; files or devices that cannot tell report everything as data.
func (e *flatExtent) alloc(off, n int64, emit func(off, n int64, st allocState)) error {
	pos, end := e.base+off, e.base+off+n
	fd := int(e.f.Fd())
	for pos < end {
		data, err := syscall.Seek(fd, pos, seekData)
		if err == syscall.ENXIO {
			data = end // no data from pos to the end of the file
		} else if err != nil {
			emit(pos-e.base, end-pos, allocData)
			return nil
		}
		if data > pos {
			z := min(data, end)
			emit(pos-e.base, z-pos, allocZero)
			pos = z
			continue
		}
		hole, err := syscall.Seek(fd, pos, seekHole)
		if err != nil {
			hole = end
		}
		h := min(max(hole, pos+1), end)
		emit(pos-e.base, h-pos, allocData)
		pos = h
	}
	return nil
}

// lseek whence values for sparse files (Linux).
const (
	seekData = 3
	seekHole = 4
)

func (e *flatExtent) info() ExtentInfo { return e.inf }
func (e *flatExtent) close() error     { return e.f.Close() }

// zeroExtent is a ZERO extent: reads zeros, never consults a parent.
type zeroExtent struct{ inf ExtentInfo }

func (e *zeroExtent) readAt(p []byte, _ int64, _ parentReader) error {
	clear(p)
	return nil
}

func (e *zeroExtent) alloc(off, n int64, emit func(off, n int64, st allocState)) error {
	emit(off, n, allocZero)
	return nil
}

func (e *zeroExtent) info() ExtentInfo { return e.inf }
func (e *zeroExtent) close() error     { return nil }

// noAccessExtent is a NOACCESS extent: reading it is an error, as in VirtualBox.
type noAccessExtent struct{ inf ExtentInfo }

func (e *noAccessExtent) readAt(p []byte, off int64, _ parentReader) error {
	return newErr(ErrFileAccessError, e.inf.Path, "extent %q is NOACCESS and cannot be read", e.inf.Filename)
}

func (e *noAccessExtent) alloc(off, n int64, emit func(off, n int64, st allocState)) error {
	emit(off, n, allocData)
	return nil
}

func (e *noAccessExtent) info() ExtentInfo { return e.inf }
func (e *noAccessExtent) close() error     { return nil }

// grainRef locates one grain of a grain-table format.
type grainRef struct {
	state      allocState
	off        int64 // byte offset in the file of the grain (or of its compressed-grain header)
	compressed bool
}

// grainMapper is the per-format part of a grain-table extent (hosted sparse, COWD, seSparse).
type grainMapper interface {
	// lookup returns where grain g (g-th grain of the extent) lives.
	lookup(g int64) (grainRef, error)
	// tableSpan is how many grains one grain table covers, so alloc can skip empty tables.
	tableSpan() int64
	// tableEmpty reports whether the grain table holding grain g is absent (all grains unallocated).
	tableEmpty(g int64) (bool, error)
}

// grainExtent reads any grain-table format: it coalesces adjacent grains into one pread, sends
// unallocated runs to the parent in one call, and inflates compressed grains in parallel.
type grainExtent struct {
	f          *os.File
	fileSize   int64
	size       int64 // extent bytes (descriptor size)
	grainBytes int64
	m          grainMapper
	inflater   *grainInflater // nil unless grains are compressed
	inf        ExtentInfo
	// Writable extents only: w holds the allocation state; rw keeps readers out while tables change.
	w  *sparseWriter
	rw sync.RWMutex
}

func (e *grainExtent) readAt(p []byte, off int64, parent parentReader) error {
	if e.w != nil {
		e.rw.RLock()
		defer e.rw.RUnlock()
	}
	type job struct {
		dst []byte
		in  int64
		ref grainRef
		g   int64
	}
	var jobs []job
	gb := e.grainBytes
	for len(p) > 0 {
		g := off / gb
		in := off % gb
		ref, err := e.m.lookup(g)
		if err != nil {
			return err
		}
		if ref.compressed {
			n := min(int64(len(p)), gb-in)
			jobs = append(jobs, job{p[:n], in, ref, g})
			p, off = p[n:], off+n
			continue
		}
		// Extend the run while the following grains continue it.
		run := min(int64(len(p)), gb-in)
		next := ref.off + gb
		for run < int64(len(p)) {
			r2, err := e.m.lookup((off + run) / gb)
			if err != nil {
				return err
			}
			if r2.compressed || r2.state != ref.state || (ref.state == allocData && r2.off != next) {
				break
			}
			run += min(int64(len(p))-run, gb)
			next += gb
		}
		switch ref.state {
		case allocData:
			if err := e.pread(p[:run], ref.off+in); err != nil {
				return err
			}
		case allocZero:
			clear(p[:run])
		default:
			if err := parent(p[:run], off); err != nil {
				return err
			}
		}
		p, off = p[run:], off+run
	}
	if len(jobs) == 0 {
		return nil
	}
	do := func(j job) error {
		if int64(len(j.dst)) == gb {
			// A whole grain: inflate straight into the caller's buffer, no cache, no copy.
			return e.inflater.inflateTo(j.dst, e, j.g, j.ref.off)
		}
		grain, err := e.inflater.grain(e, j.g, j.ref.off)
		if err != nil {
			return err
		}
		copy(j.dst, grain[j.in:])
		return nil
	}
	if len(jobs) == 1 || runtime.GOMAXPROCS(0) == 1 {
		for _, j := range jobs {
			if err := do(j); err != nil {
				return err
			}
		}
		return nil
	}
	// Inflate in parallel: this is where stream-optimized reads spend their time.
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	ch := make(chan job)
	for range workers {
		wg.Go(func() {
			for j := range ch {
				if err := do(j); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return firstErr
}

func (e *grainExtent) pread(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > e.fileSize {
		return newErr(ErrDiskNeedsRepair, e.inf.Path, "grain at byte %d points past the end of the file (%d bytes)", off, e.fileSize)
	}
	if _, err := e.f.ReadAt(p, off); err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "read %d bytes at %d", len(p), off)
	}
	return nil
}

func (e *grainExtent) alloc(off, n int64, emit func(off, n int64, st allocState)) error {
	if e.w != nil {
		e.rw.RLock()
		defer e.rw.RUnlock()
	}
	gb := e.grainBytes
	span := e.m.tableSpan()
	end := off + n
	for off < end {
		g := off / gb
		if empty, err := e.m.tableEmpty(g); err != nil {
			return err
		} else if empty {
			next := min(end, (g/span+1)*span*gb)
			emit(off, next-off, allocNone)
			off = next
			continue
		}
		ref, err := e.m.lookup(g)
		if err != nil {
			return err
		}
		next := min(end, (g+1)*gb)
		emit(off, next-off, ref.state)
		off = next
	}
	return nil
}

func (e *grainExtent) info() ExtentInfo { return e.inf }
func (e *grainExtent) close() error     { return e.f.Close() }
