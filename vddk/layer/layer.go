// Package layer is the contract between vddk and its readers of foreign container formats (qcow2, VHD,
// VHDX, VDI): each opens one file of a chain and serves the ranges it holds, leaving the rest to the
// link below it. The readers know nothing of paths, confinement or chains; vddk does that.
package layer

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"sync"
)

// State says what backs a range of a layer.
type State uint8

const (
	None State = iota // not held here: the parent supplies it, zeros at the base
	Zero              // explicitly zero: never read the parent
	Data              // stored in this file
)

// ReadFunc reads a range of the parent at the same virtual offset.
type ReadFunc func(p []byte, off int64) error

// Image is one opened layer. ReadAt and Alloc are called with ranges inside [0, Size()) and must be
// safe for concurrent use.
type Image interface {
	Size() int64
	// ReadAt fills p from virtual offset off; ranges the layer does not hold are read through parent.
	ReadAt(p []byte, off int64, parent ReadFunc) error
	// Alloc reports the state of [off, off+n) in runs, in increasing order.
	Alloc(off, n int64, emit func(off, n int64, st State)) error
	// Describe says what the layer is, for `vmdk info`.
	Describe() Description
	Close() error
}

// Parent is what a layer says of the layer below it.
type Parent struct {
	Name   string // file name as stored (relative or absolute, perhaps a Windows path); "" when none
	Names  []string
	Format string // the format the child declares for it ("raw", "qcow2"...); "" when unknown
	// ID is the identity the parent must carry (VHD/VHDX/VDI UUID), checked once it is opened; "" when
	// the format has none.
	ID string
	// ByID: the parent has no name and is found by ID among the sibling files (VDI).
	ByID bool
}

// Description is shown by `vmdk info`.
type Description struct {
	Format      string // "qcow2", "vhd", "vhdx", "vdi"
	Variant     string // "v3", "dynamic", "differencing", "fixed"...
	ID          string // the layer's own identity (UUID), matched against a child's Parent.ID
	BlockSize   int64  // cluster or block size in bytes
	Compressed  bool
	Parent      Parent
	Unsupported string // non-empty: why the layer cannot be read (then Open already failed)
}

// ErrUnsupported marks a valid file whose content this package does not read (encryption, unknown
// feature bits): vddk reports it as "not supported", not as damage.
var ErrUnsupported = errors.New("not supported")

// Unsupported returns an error that says what is not supported and is ErrUnsupported.
func Unsupported(format string, args ...any) error {
	return unsupported(fmt.Sprintf(format, args...))
}

type unsupported string

func (u unsupported) Error() string        { return string(u) }
func (u unsupported) Is(target error) bool { return target == ErrUnsupported }

// ReadFull reads len(p) bytes at off, naming a short file as damage rather than io.EOF.
func ReadFull(r io.ReaderAt, p []byte, off int64, what string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("%s at byte %d: the file ends before its %d bytes", what, off, len(p))
	}
	return fmt.Errorf("%s at byte %d: %w", what, off, err)
}

// Cache is a small mutex-guarded LRU of immutable byte slices keyed by file offset: tables, bitmaps
// and inflated clusters read once and shared by concurrent readers.
type Cache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[int64]*list.Element
}

type cacheEntry struct {
	key int64
	val []byte
}

// NewCache holds at most max entries.
func NewCache(max int) *Cache {
	return &Cache{max: max, ll: list.New(), items: map[int64]*list.Element{}}
}

// Get returns the entry of k.
func (c *Cache) Get(k int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).val, true
	}
	return nil, false
}

// Put stores v under k, evicting the least recently used entry past the bound.
func (c *Cache) Put(k int64, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{k, v})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// RunFunc maps the virtual offset off of a block-mapped layer: the state of the run starting there
// (at most limit bytes, never crossing a block), its length, and for Data its offset in the file.
type RunFunc func(off, limit int64) (st State, n, host int64, err error)

// ReadRuns serves ReadAt for a layer described by run: data from r, zeros, the rest from parent.
func ReadRuns(r io.ReaderAt, run RunFunc, p []byte, off int64, parent ReadFunc, what string) error {
	for len(p) > 0 {
		st, n, host, err := run(off, int64(len(p)))
		if err != nil {
			return err
		}
		q := p[:n]
		switch st {
		case Data:
			if err := ReadFull(r, q, host, what); err != nil {
				return err
			}
		case Zero:
			clear(q)
		default:
			if err := parent(q, off); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}

// AllocRuns serves Alloc for a layer described by run.
func AllocRuns(run RunFunc, off, n int64, emit func(off, n int64, st State)) error {
	end := off + n
	for off < end {
		st, m, _, err := run(off, end-off)
		if err != nil {
			return err
		}
		emit(off, m, st)
		off += m
	}
	return nil
}

// Spanner is implemented by layers that can say where a whole range lies in their own file, so that
// copies and the mount can hand file ranges to the kernel instead of copying bytes.
type Spanner interface {
	// Span returns the state of [off, off+n) when the whole range has one state and, for Data, lies
	// contiguously at host in the layer's file; ok is false otherwise.
	Span(off, n int64) (st State, host int64, ok bool)
}

// SpanRuns serves Span for a layer described by run: the runs from off on must share one state and,
// for Data, follow each other in the file (blocks stored in order, as a fixed or freshly converted
// image has them), so that a range crossing block edges still maps to one stretch of the file.
func SpanRuns(run RunFunc, off, n int64) (State, int64, bool) {
	st, m, host, err := run(off, n)
	if err != nil {
		return 0, 0, false
	}
	for pos := off + m; pos < off+n; {
		st2, m2, host2, err := run(pos, off+n-pos)
		if err != nil || st2 != st || st == Data && host2 != host+(pos-off) {
			return 0, 0, false
		}
		pos += m2
	}
	return st, host, true
}
