package vddk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
)

// Stream-optimized extents: compressed grains, metadata markers, footer.

const (
	markerEOS      = 0
	markerGT       = 1
	markerGD       = 2
	markerFooter   = 3
	footerScanSize = 1 << 20 // how far back from EOF a footer is looked for (padded copies)
)

// grainInflater inflates compressed grains and keeps a few of them, so that small sequential reads
// inside one grain do not inflate it again and again.
type grainInflater struct {
	markers  bool
	capacity int64
	cache    *sizedLRU[grainKey, []byte] // nil: unbuffered
	file     fileID                      // the file's key in a cache the disk's extents share
	bufs     sync.Pool
	// inflight deduplicates concurrent inflation of the same grain.
	mu       sync.Mutex
	inflight map[int64]*inflightGrain
}

type inflightGrain struct {
	done  chan struct{}
	grain []byte
	err   error
}

// grainKey names an inflated grain in a cache shared by the files of a disk.
type grainKey struct {
	file fileID
	g    int64
}

func newGrainInflater(markers bool, capacity int64, cache *sizedLRU[grainKey, []byte], file fileID) *grainInflater {
	return &grainInflater{
		markers:  markers,
		capacity: capacity,
		cache:    cache,
		file:     file,
		inflight: map[int64]*inflightGrain{},
	}
}

// grain returns the inflated grain g whose compressed form starts at file offset off.
func (z *grainInflater) grain(e *grainExtent, g, off int64) ([]byte, error) {
	if z.cache != nil {
		if b, ok := z.cache.get(grainKey{z.file, g}); ok {
			return b, nil
		}
	}
	z.mu.Lock()
	if w, ok := z.inflight[g]; ok {
		z.mu.Unlock()
		<-w.done
		return w.grain, w.err
	}
	w := &inflightGrain{done: make(chan struct{})}
	z.inflight[g] = w
	z.mu.Unlock()

	w.grain, w.err = z.inflate(e, g, off)
	if w.err == nil && z.cache != nil {
		z.cache.put(grainKey{z.file, g}, w.grain)
	}
	z.mu.Lock()
	delete(z.inflight, g)
	z.mu.Unlock()
	close(w.done)
	return w.grain, w.err
}

func (z *grainInflater) inflate(e *grainExtent, g, off int64) ([]byte, error) {
	out := make([]byte, e.grainBytes)
	return out, z.inflateTo(out, e, g, off)
}

// inflateTo inflates grain g (compressed at file offset off) into out, which holds one grain.
func (z *grainInflater) inflateTo(out []byte, e *grainExtent, g, off int64) error {
	gb := e.grainBytes
	// A compressed grain may be a little larger than the grain itself (incompressible data).
	limit := 2*gb + SectorSize
	var size int64
	dataOff := off
	if z.markers {
		var hdr [12]byte
		if err := e.pread(hdr[:], off); err != nil {
			return err
		}
		size = int64(binary.LittleEndian.Uint32(hdr[8:]))
		if lba := binary.LittleEndian.Uint64(hdr[0:]); lba != uint64(g*gb/SectorSize) {
			return newErr(ErrDiskNeedsRepair, e.inf.Path, "compressed grain at byte %d says it holds sector %d, but the grain table puts grain %d there", off, lba, g)
		}
		if size == 0 || size > limit {
			return newErr(ErrDiskNeedsRepair, e.inf.Path, "compressed grain at byte %d has size %d", off, size)
		}
		dataOff += 12
	} else {
		size = min(limit, e.fileSize-off)
	}
	size = min(size, e.fileSize-dataOff)
	if size <= 0 {
		return newErr(ErrDiskNeedsRepair, e.inf.Path, "compressed grain at byte %d lies past the end of the file", off)
	}
	bp, _ := z.bufs.Get().(*[]byte)
	if bp == nil || int64(cap(*bp)) < size {
		b := make([]byte, limit)
		bp = &b
	}
	defer z.bufs.Put(bp)
	src := (*bp)[:size]
	if _, err := e.f.ReadAt(src, dataOff); err != nil && !(errors.Is(err, io.EOF) && !z.markers) {
		return wrapErr(ErrFileError, e.inf.Path, err, "read compressed grain at byte %d", off)
	}
	n, err := inflateInto(out, src)
	if err != nil {
		return wrapErr(ErrDiskNeedsRepair, e.inf.Path, err, "compressed grain %d at byte %d does not inflate", g, off)
	}
	// The last grain of a disk whose size is not grain-aligned may inflate short.
	if n < len(out) && (g+1)*gb < z.capacity {
		return newErr(ErrDiskNeedsRepair, e.inf.Path, "compressed grain %d at byte %d inflates to %d bytes, not %d", g, off, n, gb)
	}
	clear(out[n:])
	return nil
}

// errChecksum is a grain whose zlib checksum does not match its inflated bytes.
var errChecksum = errors.New("zlib checksum mismatch")

// inflateInto inflates a zlib stream (raw deflate, for writers that omit the zlib header) into out,
// verifying the zlib checksum; it returns the bytes produced, which may be fewer than len(out) for a
// disk's last grain. The deflate body is decoded straight into out by inflateRaw and the checksum
// computed by adler32Sum, both faster than the streaming flate and zlib readers.
func inflateInto(out, src []byte) (int, error) {
	body, zlibHeader := src, isZlibHeader(src)
	if zlibHeader {
		body = src[2:]
	}
	n, used, err := deflate.InflateRaw(out, body)
	switch {
	case err == nil:
	case errors.As(err, new(deflate.OutputLimitError)):
		// Data beyond one grain is ignored, as qemu does.
		return n, nil
	case errors.Is(err, deflate.ErrTruncated) && n < len(out):
		// A stream cut short gives what it holds (inflateTo refuses a short grain but the last); one cut
		// right at the grain's end is refused, as the streaming reader this replaces did.
		return n, nil
	default:
		return n, err
	}
	// The checksum follows the deflate body; a stream cut before it is let through, as the zlib
	// package does.
	if rest := body[used:]; zlibHeader && len(rest) >= 4 {
		if binary.BigEndian.Uint32(rest) != adler32Sum(out[:n]) {
			return n, errChecksum
		}
	}
	return n, nil
}

// isZlibHeader reports whether b starts with a zlib header for deflate without a preset dictionary.
func isZlibHeader(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && b[1]&0x20 == 0 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// findStreamFooter looks for FOOTER marker + footer header near the end of the file, scanning back over
// trailing padding. It returns nil when there is none.
func findStreamFooter(f *os.File, fileSize int64) (*sparseHeader, error) {
	start := max(0, fileSize-footerScanSize) / SectorSize * SectorSize
	buf := make([]byte, fileSize-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, err
	}
	for i := (len(buf)/SectorSize - 2) * SectorSize; i >= 0; i -= SectorSize {
		m := buf[i : i+SectorSize]
		if binary.LittleEndian.Uint32(m[8:]) != 0 || binary.LittleEndian.Uint32(m[12:]) != markerFooter {
			continue
		}
		h, err := parseSparseHeader(buf[i+SectorSize:])
		if err != nil {
			continue
		}
		return h, nil
	}
	return nil, nil
}

// scanStream walks a stream from its first grain to rebuild the grain map from the grain headers' LBAs.
func scanStream(f *os.File, fileSize int64, h *sparseHeader) (map[int64]uint32, error) {
	if h.Flags&flagMarkers == 0 {
		return nil, fmt.Errorf("no grain directory and no markers to scan")
	}
	gs := int64(h.GrainSize)
	off := int64(h.OverHead) * SectorSize
	if off < SectorSize {
		off = SectorSize
	}
	grains := map[int64]uint32{}
	var hdr [16]byte
	for off+16 <= fileSize {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return nil, err
		}
		val := binary.LittleEndian.Uint64(hdr[0:])
		size := int64(binary.LittleEndian.Uint32(hdr[8:]))
		if size > 0 {
			if val%uint64(gs) != 0 || val >= h.Capacity {
				return nil, fmt.Errorf("grain header at byte %d names sector %d", off, val)
			}
			if off/SectorSize >= 1<<32 {
				return nil, fmt.Errorf("grain at byte %d lies beyond what a grain table can address", off)
			}
			grains[int64(val)/gs] = uint32(off / SectorSize)
			off += (12 + size + SectorSize - 1) / SectorSize * SectorSize
			continue
		}
		switch typ := binary.LittleEndian.Uint32(hdr[12:]); typ {
		case markerEOS:
			return grains, nil
		default:
			if val > uint64(fileSize) {
				return nil, fmt.Errorf("marker at byte %d announces %d sectors", off, val)
			}
			off += SectorSize + int64(val)*SectorSize
		}
	}
	return grains, nil
}
