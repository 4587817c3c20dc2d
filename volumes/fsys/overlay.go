package fsys

import (
	"fmt"
	"io"
	"sort"
)

// Patch replaces Len bytes of a volume at Off with the bytes of Src at SrcOff: a block a journal or
// log replay found newer than the one in place.
type Patch struct {
	Off, Len int64
	Src      io.ReaderAt
	SrcOff   int64
}

// Overlay is the replayed view of a volume: it reads Base except where a patch covers it. The source
// is never written; patches keep where their bytes live rather than copies, so memory stays bounded
// by the number of patches, which a replay bounds by its journal's size.
type Overlay struct {
	base    io.ReaderAt
	size    int64
	patches []Patch // sorted by Off, not overlapping
}

// NewOverlay builds an overlay of size bytes over base. Patches may come in any order; they must not
// overlap each other or reach past size.
func NewOverlay(base io.ReaderAt, size int64, patches []Patch) (*Overlay, error) {
	ps := append([]Patch(nil), patches...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Off < ps[j].Off })
	for i, p := range ps {
		if p.Off < 0 || p.Len <= 0 || p.Off+p.Len > size || p.SrcOff < 0 {
			return nil, fmt.Errorf("overlay: patch of %d bytes at %d outside the %d-byte volume", p.Len, p.Off, size)
		}
		if i > 0 && ps[i-1].Off+ps[i-1].Len > p.Off {
			return nil, fmt.Errorf("overlay: patches at %d and %d overlap", ps[i-1].Off, p.Off)
		}
	}
	return &Overlay{base: base, size: size, patches: ps}, nil
}

// Patches is the number of replaced ranges.
func (o *Overlay) Patches() int { return len(o.patches) }

// ReadAt reads the replayed view. It is safe for concurrent use when base and the patch sources are.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("overlay: negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > o.size-off {
		p = p[:o.size-off]
	}
	i := sort.Search(len(o.patches), func(i int) bool { return o.patches[i].Off+o.patches[i].Len > off })
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		rest := p[done:]
		if i < len(o.patches) && o.patches[i].Off <= pos {
			pt := o.patches[i]
			n := min(int64(len(rest)), pt.Off+pt.Len-pos)
			if _, err := pt.Src.ReadAt(rest[:n], pt.SrcOff+pos-pt.Off); err != nil {
				return done, fmt.Errorf("overlay: reading the replayed copy of offset %d: %w", pos, err)
			}
			done += int(n)
			i++
			continue
		}
		n := int64(len(rest))
		if i < len(o.patches) {
			n = min(n, o.patches[i].Off-pos)
		}
		m, err := o.base.ReadAt(rest[:n], pos)
		done += m
		if err != nil && !(err == io.EOF && int64(m) == n) {
			return done, err
		}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}
