// Package regf reads Windows registry hive files (the "regf" format of SYSTEM, SOFTWARE, NTUSER.DAT…):
// the base block, hive bins, key (nk), value (vk) and security (sk) cells, the lf/lh/li/ri subkey lists
// and big-data (db) values. It is read-only and made for hostile input: every cell offset is checked
// against the hive bin that holds it, sizes are bounded by the bytes that back them, subkey lists,
// key trees and big-data segment lists that loop are refused, and nothing is allocated from a count the
// file does not back.
//
// Transaction logs (.LOG1/.LOG2) are not replayed: a hive whose sequence numbers differ is read as it
// is on disk and reported by Dirty, as hivex does.
package regf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

const (
	baseBlockSize = 4096
	hbinHeader    = 32
	pageSize      = 4096
	// bigDataSegment is the most data one segment of a big-data value holds.
	bigDataSegment = 16344
	// MaxDepth bounds key nesting, as Windows does (512 levels).
	MaxDepth = 512
	// cachePages bounds the page cache (4 MiB).
	cachePages = 1024
)

// ErrCorrupt is returned (wrapped, with the hive's name and the offending offset) for damaged or
// hostile structures.
var ErrCorrupt = errors.New("corrupt registry hive")

// ErrNotFound is returned (wrapped) when a key or value does not exist.
var ErrNotFound = errors.New("not found in the registry hive")

// Hive is an open hive file. It is safe for concurrent use.
type Hive struct {
	r    io.ReaderAt
	name string
	end  int64 // absolute end of the hive bins' data

	// Major and Minor are the format version (1.3 for NT 4 … 1.5 and 1.6 for XP and later).
	Major, Minor uint32
	// Dirty is true when the base block's sequence numbers differ: the hive has writes in its
	// transaction logs that were not replayed.
	Dirty bool
	// LastWritten is the base block's time stamp.
	LastWritten time.Time
	root        uint32

	mu    sync.Mutex // guards pages
	pages map[int64][]byte
	binMu sync.Mutex // guards hbins
	// hbins maps a page (absolute offset) to the hive bin that covers it, as found; noHbin marks
	// pages that no bin covers.
	hbins map[int64]span
}

type span struct{ start, end int64 }

var noHbin = span{-1, -1}

// Open reads the base block of the hive r (size bytes; name is used in errors).
func Open(r io.ReaderAt, size int64, name string) (*Hive, error) {
	h := &Hive{r: r, name: name, pages: map[int64][]byte{}, hbins: map[int64]span{}}
	if size < baseBlockSize+hbinHeader {
		return nil, h.errf("%d bytes is too short for a hive", size)
	}
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("regf %s: base block: %w", name, err)
	}
	if string(b[:4]) != "regf" {
		return nil, h.errf("no regf signature")
	}
	var sum uint32
	for i := 0; i < 0x1FC; i += 4 {
		sum ^= le32(b[i:])
	}
	if sum == 0xFFFFFFFF {
		sum = 0xFFFFFFFE
	} else if sum == 0 {
		sum = 1
	}
	if got := le32(b[0x1FC:]); got != sum {
		return nil, h.errf("base block checksum %#x, computed %#x", got, sum)
	}
	h.Dirty = le32(b[4:]) != le32(b[8:])
	h.LastWritten = filetime(le64(b[0x0C:]))
	h.Major, h.Minor = le32(b[0x14:]), le32(b[0x18:])
	if h.Major != 1 {
		return nil, h.errf("format version %d.%d is not 1.x", h.Major, h.Minor)
	}
	h.root = le32(b[0x24:])
	data := int64(le32(b[0x28:]))
	h.end = baseBlockSize + data
	if data%pageSize != 0 || h.end > size || data == 0 {
		// A hive cut short (or a base block whose length is off): read what the file holds.
		h.end = baseBlockSize + (size-baseBlockSize)/pageSize*pageSize
	}
	if _, err := h.Root(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Hive) errf(format string, args ...any) error {
	return fmt.Errorf("regf %s: %w: %s", h.name, ErrCorrupt, fmt.Sprintf(format, args...))
}

// read returns n bytes at the absolute offset off, through a small page cache.
func (h *Hive) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > h.end {
		return nil, h.errf("read of %d bytes at %#x outside the hive's %d bytes", n, off, h.end)
	}
	out := make([]byte, n)
	if n > 16*pageSize {
		if _, err := h.r.ReadAt(out, off); err != nil {
			return nil, fmt.Errorf("regf %s: read at %#x: %w", h.name, off, err)
		}
		return out, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for done := 0; done < n; {
		pos := off + int64(done)
		page := pos &^ (pageSize - 1)
		p, ok := h.pages[page]
		if !ok {
			p = make([]byte, pageSize)
			if _, err := h.r.ReadAt(p, page); err != nil && !(errors.Is(err, io.EOF) && page+pageSize > h.end) {
				return nil, fmt.Errorf("regf %s: read at %#x: %w", h.name, page, err)
			}
			if len(h.pages) >= cachePages {
				clear(h.pages)
			}
			h.pages[page] = p
		}
		done += copy(out[done:], p[pos-page:])
	}
	return out, nil
}

// hbinOf finds the hive bin holding the absolute offset off: the nearest bin header at or before it
// whose own offset field agrees with where it lies. Pages are remembered, so each is looked at once.
func (h *Hive) hbinOf(off int64) (span, error) {
	var walked []int64
	found := noHbin
	for p := off &^ (pageSize - 1); p >= baseBlockSize; p -= pageSize {
		if s, ok := h.hbins[p]; ok {
			found = s
			break
		}
		walked = append(walked, p)
		hdr, err := h.read(p, hbinHeader)
		if err != nil {
			return noHbin, err
		}
		if string(hdr[:4]) == "hbin" && int64(le32(hdr[4:])) == p-baseBlockSize {
			size := int64(le32(hdr[8:]))
			if size < pageSize || size%pageSize != 0 || p+size > h.end {
				return noHbin, h.errf("hive bin at %#x claims %d bytes", p, size)
			}
			found = span{p, p + size}
			break
		}
	}
	for _, p := range walked {
		if found != noHbin && p < found.end {
			h.hbins[p] = found
		} else {
			h.hbins[p] = noHbin
		}
	}
	if found == noHbin || off >= found.end {
		return noHbin, h.errf("offset %#x is in no hive bin", off-baseBlockSize)
	}
	return found, nil
}

// cell returns the data of the cell at the hive offset off (relative to the first hive bin).
func (h *Hive) cell(off uint32) ([]byte, error) {
	if off == 0xFFFFFFFF || off%8 != 0 {
		return nil, h.errf("cell offset %#x is invalid", off)
	}
	abs := baseBlockSize + int64(off)
	if abs+4 > h.end {
		return nil, h.errf("cell offset %#x is past the hive's end", off)
	}
	h.binMu.Lock()
	bin, err := h.hbinOf(abs)
	h.binMu.Unlock()
	if err != nil {
		return nil, err
	}
	if abs < bin.start+hbinHeader {
		return nil, h.errf("cell offset %#x is inside a hive bin header", off)
	}
	b, err := h.read(abs, 4)
	if err != nil {
		return nil, err
	}
	size := int64(int32(le32(b)))
	if size < 0 {
		size = -size
	}
	if size < 8 || abs+size > bin.end {
		return nil, h.errf("cell at %#x of %d bytes does not fit its hive bin [%#x, %#x)", off, size,
			bin.start-baseBlockSize, bin.end-baseBlockSize)
	}
	return h.read(abs+4, int(size-4))
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// filetime converts 100 ns ticks since 1601 into a time (zero for 0).
func filetime(t uint64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000
	d := int64(t - epochDiff)
	return time.Unix(d/1e7, d%1e7*100).UTC()
}
