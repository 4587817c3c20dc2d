package ntfs

import (
	"io"
	"sort"
)

// stream reads one attribute's value: resident bytes, or clusters through the run list with sparse
// runs, compression units and the initialized size taken into account. It is immutable and so safe
// for concurrent ReadAt.
type stream struct {
	f        *FS
	a        *attribute
	size     int64
	unitKey  unitKey // cache identity of this stream's compression units
	unitSize int64   // bytes per compression unit; 0 when not compressed
}

// maxUnitSize bounds a compression unit; Windows uses 16 clusters of at most 4 KiB (64 KiB).
const maxUnitSize = 1 << 20

type unitKey struct {
	rec  uint64
	typ  uint32
	name string
	unit int64
}

func (f *FS) newStream(rec uint64, a *attribute) (*stream, error) {
	s := &stream{f: f, a: a, size: a.dataSize, unitKey: unitKey{rec: rec, typ: a.typ, name: a.name}}
	if a.resident {
		return s, nil
	}
	cs := int64(f.boot.clusterSize)
	for _, r := range a.runs {
		if r.lcn >= 0 && (r.lcn > f.totalClusters || r.length > f.totalClusters-r.lcn) {
			return nil, corrupt("MFT record %d: attribute %#x run at cluster %d+%d beyond the volume", rec, a.typ, r.lcn, r.length)
		}
	}
	if a.allocSize/cs > maxVCN || a.dataSize > a.allocSize+cs<<16 {
		return nil, corrupt("MFT record %d: attribute %#x sizes inconsistent (data %d, allocated %d)", rec, a.typ, a.dataSize, a.allocSize)
	}
	if a.flags&attrFlagCompressed != 0 && a.compUnit != 0 {
		s.unitSize = cs << a.compUnit
		if s.unitSize > maxUnitSize {
			return nil, corrupt("MFT record %d: compression unit of %d bytes", rec, s.unitSize)
		}
	}
	return s, nil
}

// ReadAt reads len(p) bytes at off; it returns io.EOF at and past the end of the value.
func (s *stream) ReadAt(p []byte, off int64) (n int, err error) {
	defer guard(&err)
	if off < 0 {
		return 0, corrupt("negative offset %d", off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > s.size-off {
		p = p[:s.size-off]
	}
	if s.a.resident {
		n = copy(p, s.a.value[min(off, int64(len(s.a.value))):])
		clear(p[n:])
		n = len(p)
	} else if s.unitSize > 0 {
		n, err = s.readCompressed(p, off)
	} else {
		n, err = s.readClusters(p, off)
	}
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// findRun returns the index of the run holding vcn, or -1.
func (s *stream) findRun(vcn int64) int {
	runs := s.a.runs
	i := sort.Search(len(runs), func(i int) bool { return runs[i].vcn+runs[i].length > vcn })
	if i < len(runs) && runs[i].vcn <= vcn {
		return i
	}
	return -1
}

// readClusters reads an uncompressed non-resident range; bytes past the initialized size are zero.
func (s *stream) readClusters(p []byte, off int64) (int, error) {
	cs := int64(s.f.boot.clusterSize)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		rest := p[done:]
		if pos >= s.a.initSize {
			clear(rest)
			return len(p), nil
		}
		if lim := s.a.initSize - pos; int64(len(rest)) > lim {
			rest = rest[:lim]
		}
		i := s.findRun(pos / cs)
		if i < 0 {
			return done, corrupt("MFT record %d: attribute %#x has no run for offset %d", s.unitKey.rec, s.a.typ, pos)
		}
		r := s.a.runs[i]
		if end := (r.vcn + r.length) * cs; int64(len(rest)) > end-pos {
			rest = rest[:end-pos]
		}
		if r.lcn < 0 {
			clear(rest)
		} else {
			disk := r.lcn*cs + pos - r.vcn*cs
			if _, err := s.f.r.ReadAt(rest, disk); err != nil {
				return done, wrapIO(err, "clusters of MFT record %d", s.unitKey.rec)
			}
		}
		done += len(rest)
	}
	return done, nil
}

// readCompressed reads through compression units, decompressing (and caching) each unit it touches.
func (s *stream) readCompressed(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		u := pos / s.unitSize
		data, err := s.unit(u)
		if err != nil {
			return done, err
		}
		in := pos - u*s.unitSize
		var n int
		if data == nil {
			n = int(min(int64(len(p)-done), s.unitSize-in))
			clear(p[done : done+n])
		} else {
			n = copy(p[done:], data[in:])
		}
		// Past the initialized size the value reads as zeros.
		if end := pos + int64(n); end > s.a.initSize {
			from := max(pos, s.a.initSize)
			clear(p[done+int(from-pos) : done+n])
		}
		done += n
	}
	return done, nil
}

// unit returns the decompressed bytes of compression unit u, or nil when it is all sparse.
func (s *stream) unit(u int64) ([]byte, error) {
	k := s.unitKey
	k.unit = u
	if d, ok := s.f.units.Get(k); ok {
		return d, nil
	}
	cs := int64(s.f.boot.clusterSize)
	per := s.unitSize / cs
	first := u * per
	// Gather the allocated clusters of the unit, in VCN order.
	var pieces []clusterPiece
	allocated := int64(0)
	for vcn := first; vcn < first+per; {
		i := s.findRun(vcn)
		if i < 0 {
			if vcn*cs >= s.a.allocSize {
				break
			}
			return nil, corrupt("MFT record %d: compressed attribute has no run for cluster %d", k.rec, vcn)
		}
		r := s.a.runs[i]
		n := min(r.vcn+r.length, first+per) - vcn
		if r.lcn >= 0 {
			pieces = append(pieces, clusterPiece{r.lcn + vcn - r.vcn, n})
			allocated += n
		}
		vcn += n
	}
	var data []byte
	switch {
	case allocated == 0:
		data = nil
	case allocated >= per:
		// A full unit is stored uncompressed.
		data = make([]byte, s.unitSize)
		if err := s.readPieces(data, pieces, cs); err != nil {
			return nil, err
		}
	default:
		raw := make([]byte, allocated*cs)
		if err := s.readPieces(raw, pieces, cs); err != nil {
			return nil, err
		}
		data = make([]byte, s.unitSize)
		if _, err := decompressLZNT1(data, raw); err != nil {
			return nil, wrapAt(err, k.rec)
		}
	}
	s.f.units.Put(k, data, len(data)+64)
	return data, nil
}

// clusterPiece is a stretch of n allocated clusters at lcn.
type clusterPiece struct{ lcn, n int64 }

func (s *stream) readPieces(dst []byte, pieces []clusterPiece, cs int64) error {
	at := int64(0)
	for _, pc := range pieces {
		if _, err := s.f.r.ReadAt(dst[at:at+pc.n*cs], pc.lcn*cs); err != nil {
			return wrapIO(err, "compressed clusters of MFT record %d", s.unitKey.rec)
		}
		at += pc.n * cs
	}
	return nil
}

// attrValue reads a whole attribute value, refusing values larger than limit.
func (f *FS) attrValue(rec uint64, a *attribute, limit int64) ([]byte, error) {
	if a.resident {
		return a.value, nil
	}
	if a.dataSize > limit {
		return nil, corrupt("attribute %#x value of %d bytes exceeds %d", a.typ, a.dataSize, limit)
	}
	s, err := f.newStream(rec, a)
	if err != nil {
		return nil, err
	}
	b := make([]byte, a.dataSize)
	if _, err := s.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}
