package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
	"github.com/vmdkmount/vmdkmount/vddk/layer"
)

// run is a stretch of one cluster with one state.
type run struct {
	st         layer.State
	n          int64  // bytes, from the offset asked
	host       int64  // Data, uncompressed: byte offset in the data file of the offset asked
	compressed uint64 // Data, compressed: the L2 entry
	inCluster  int64  // offset asked, within its cluster
}

// l2Table returns the L2 table of L1 index i, nil when none is allocated.
func (im *Image) l2Table(i int64) ([]byte, error) {
	if i >= int64(len(im.l1)) {
		return nil, nil
	}
	off := int64(im.l1[i] & offsetMask)
	if off == 0 {
		return nil, nil
	}
	if off%im.clusterSize != 0 || off > im.fileSize-im.clusterSize {
		return nil, fmt.Errorf("qcow2 L1 entry %d points at byte %d, outside the %d-byte file or misaligned", i, off, im.fileSize)
	}
	if im.overlapsL1(off, im.clusterSize) {
		return nil, fmt.Errorf("qcow2 L1 entry %d points at the L1 table itself", i)
	}
	if t, ok := im.l2cache.Get(off); ok {
		return t, nil
	}
	t := make([]byte, im.clusterSize)
	if err := layer.ReadFull(im.r, t, off, "qcow2 L2 table"); err != nil {
		return nil, err
	}
	im.l2cache.Put(off, t)
	return t, nil
}

func (im *Image) overlapsL1(off, n int64) bool {
	return off < im.l1Off+int64(len(im.l1))*8 && im.l1Off < off+n
}

// lookup describes the virtual offset off (inside the disk), up to the end of its cluster or of the
// run of equal subclusters, capped at limit bytes.
func (im *Image) lookup(off, limit int64) (run, error) {
	vc := off >> im.clusterBits
	in := off & (im.clusterSize - 1)
	r := run{n: min(limit, im.clusterSize-in), inCluster: in}
	t, err := im.l2Table(vc / im.l2Entries)
	if err != nil || t == nil {
		return r, err
	}
	j := vc % im.l2Entries
	e := binary.BigEndian.Uint64(t[j*im.entryBytes:])
	if e&l2Compress != 0 {
		if im.external {
			return r, fmt.Errorf("qcow2 L2 entry of cluster %d is compressed, which an image with a data file may not be", vc)
		}
		r.st, r.compressed = layer.Data, e
		return r, nil
	}
	host := int64(e & offsetMask)
	allocated := host != 0 || im.external && e&l2Copied != 0
	if !im.extL2 {
		switch {
		case e&l2Zero != 0:
			if im.version < 3 {
				return r, fmt.Errorf("qcow2 v2 L2 entry of cluster %d has the v3 zero flag", vc)
			}
			r.st = layer.Zero
		case allocated:
			if err := im.checkHost(vc, host); err != nil {
				return r, err
			}
			r.st, r.host = layer.Data, host+in
		}
		return r, nil
	}
	bm := binary.BigEndian.Uint64(t[j*im.entryBytes+8:])
	sub := im.clusterSize / subclusters
	s := in / sub
	state := func(s int64) (layer.State, error) {
		a, z := bm>>s&1 != 0, bm>>(32+s)&1 != 0
		switch {
		case a && z:
			return 0, fmt.Errorf("qcow2 subcluster %d of cluster %d is both allocated and zero", s, vc)
		case a && !allocated:
			return 0, fmt.Errorf("qcow2 subcluster %d of cluster %d is allocated in an unallocated cluster", s, vc)
		case a:
			return layer.Data, nil
		case z:
			return layer.Zero, nil
		}
		return layer.None, nil
	}
	st, err := state(s)
	if err != nil {
		return r, err
	}
	end := s + 1
	for ; end < subclusters && end*sub < in+r.n; end++ {
		if st2, err := state(end); err != nil || st2 != st {
			break
		}
	}
	r.n = min(r.n, end*sub-in)
	r.st = st
	if st == layer.Data {
		if err := im.checkHost(vc, host); err != nil {
			return r, err
		}
		r.host = host + in
	}
	return r, nil
}

func (im *Image) checkHost(vc, host int64) error {
	if host%im.clusterSize != 0 {
		return fmt.Errorf("qcow2 L2 entry of cluster %d points at byte %d, not a cluster boundary", vc, host)
	}
	if host >= im.dataSize {
		return fmt.Errorf("qcow2 L2 entry of cluster %d points at byte %d, past the end of the %d-byte file", vc, host, im.dataSize)
	}
	if !im.external && im.overlapsL1(host, im.clusterSize) {
		return fmt.Errorf("qcow2 L2 entry of cluster %d points at the L1 table", vc)
	}
	return nil
}

// ReadAt fills p from virtual offset off; unallocated ranges come from parent.
func (im *Image) ReadAt(p []byte, off int64, parent layer.ReadFunc) error {
	// Host-contiguous data runs are gathered into one read.
	var pend []byte
	var pendHost int64
	flush := func() error {
		if len(pend) == 0 {
			return nil
		}
		err := im.readData(pend, pendHost)
		pend = nil
		return err
	}
	for len(p) > 0 {
		r, err := im.lookup(off, int64(len(p)))
		if err != nil {
			return err
		}
		q := p[:r.n]
		if r.st == layer.Data && r.compressed == 0 {
			if len(pend) > 0 && pendHost+int64(len(pend)) == r.host { // pend ends where q starts: any other run flushed it
				pend = pend[:len(pend)+len(q)]
			} else {
				if err := flush(); err != nil {
					return err
				}
				pend, pendHost = q, r.host
			}
		} else {
			if err := flush(); err != nil {
				return err
			}
			switch r.st {
			case layer.None:
				if err := parent(q, off); err != nil {
					return err
				}
			case layer.Zero:
				clear(q)
			case layer.Data:
				if r.n == im.clusterSize { // whole clusters (a copy): inflate in place, no cache
					n, err := im.inflateRun(p, off, r)
					if err != nil {
						return err
					}
					r.n = n
					break
				}
				c, err := im.inflate(r.compressed, off>>im.clusterBits)
				if err != nil {
					return err
				}
				copy(q, c[r.inCluster:])
			}
		}
		p, off = p[r.n:], off+r.n
	}
	return flush()
}

// readData reads stored bytes; bytes past the end of the file read as zeros, as qemu reads them (the
// last cluster of an image may be only partly written).
func (im *Image) readData(p []byte, host int64) error {
	n, err := im.data.ReadAt(p, host)
	if err != nil && err != io.EOF {
		return fmt.Errorf("qcow2 data at byte %d: %w", host, err)
	}
	clear(p[n:])
	return nil
}

var (
	zstdPool = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderLowmem(true), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err) // only for invalid options
		}
		return d
	}}
)

// inflate returns the cluster a compressed L2 entry describes, from the cache when it was read before
// (reads of parts of one cluster come in a row).
func (im *Image) inflate(e uint64, vc int64) ([]byte, error) {
	coff, _ := im.compressedRange(e)
	if c, ok := im.clusterCache.Get(coff); ok {
		return c, nil
	}
	out := make([]byte, im.clusterSize)
	if err := im.inflateInto(out, e, vc); err != nil {
		return nil, err
	}
	im.clusterCache.Put(coff, out)
	return out, nil
}

// compressedRange returns where the compressed bytes of an L2 entry lie: the offset and the size its
// sector count allows (the stream may end before).
func (im *Image) compressedRange(e uint64) (off, n int64) {
	x := 62 - (im.clusterBits - 8)
	off = int64(e & (1<<x - 1))
	sectors := int64(e>>x&(1<<(im.clusterBits-8)-1)) + 1
	return off, sectors*512 - off&511
}

// srcPool holds the buffers compressed clusters are read into (grown to the largest asked: at most
// twice a cluster, the most an L2 entry's sector count can say).
var srcPool = sync.Pool{New: func() any { return new([]byte) }}

// compressedSpan returns the checked byte range of a compressed L2 entry's bytes in the file.
func (im *Image) compressedSpan(e uint64, vc int64) (off, n int64, err error) {
	off, n = im.compressedRange(e)
	if off <= 0 || off >= im.fileSize {
		return 0, 0, fmt.Errorf("qcow2 compressed cluster %d at byte %d lies outside the %d-byte file", vc, off, im.fileSize)
	}
	return off, min(n, im.fileSize-off), nil
}

// srcBuf returns a pooled buffer of n bytes, and the holder to give back to srcPool.
func srcBuf(n int64) ([]byte, *[]byte) {
	bp := srcPool.Get().(*[]byte)
	if int64(cap(*bp)) < n {
		*bp = make([]byte, n)
	}
	return (*bp)[:n], bp
}

// inflateInto decompresses the cluster a compressed L2 entry describes into out (one cluster).
func (im *Image) inflateInto(out []byte, e uint64, vc int64) error {
	coff, csize, err := im.compressedSpan(e, vc)
	if err != nil {
		return err
	}
	src, bp := srcBuf(csize)
	defer srcPool.Put(bp)
	if err := layer.ReadFull(im.r, src, coff, "qcow2 compressed cluster"); err != nil {
		return err
	}
	return im.decodeCluster(out, src, vc, coff)
}

// maxBatch bounds the compressed bytes inflateRun reads at once.
const maxBatch = 256 << 10

// inflateRun decompresses into p the whole compressed clusters p starts with (the first described by
// r) whose compressed bytes follow one another in the file, as qemu-img writes them, reading those
// bytes with one call rather than one per cluster (text compresses to a few hundred bytes a cluster).
// It returns how many bytes of p it filled: at least the first cluster, or an error.
func (im *Image) inflateRun(p []byte, off int64, r run) (int64, error) {
	type item struct{ vc, coff, csize int64 }
	var items [32]item
	k := 0
	var start, end int64
	for n := int64(0); n < int64(len(p)) && k < len(items); n += im.clusterSize {
		if n > 0 {
			var err error
			if r, err = im.lookup(off+n, int64(len(p))-n); err != nil || r.st != layer.Data || r.compressed == 0 || r.n != im.clusterSize {
				break // the caller's next round deals with it
			}
		}
		vc := (off + n) >> im.clusterBits
		coff, csize, err := im.compressedSpan(r.compressed, vc)
		if err != nil {
			if k == 0 {
				return 0, err
			}
			break
		}
		if k == 0 {
			start, end = coff, coff+csize
		} else if coff < start || coff > end || max(end, coff+csize)-start > maxBatch {
			break
		} else {
			end = max(end, coff+csize)
		}
		items[k] = item{vc, coff, csize}
		k++
	}
	src, bp := srcBuf(end - start)
	defer srcPool.Put(bp)
	if err := layer.ReadFull(im.r, src, start, "qcow2 compressed cluster"); err != nil {
		return 0, err
	}
	for i, it := range items[:k] {
		b := src[it.coff-start:][:it.csize]
		if err := im.decodeCluster(p[int64(i)*im.clusterSize:][:im.clusterSize], b, it.vc, it.coff); err != nil {
			return 0, err
		}
	}
	return int64(k) * im.clusterSize, nil
}

// decodeCluster decompresses src, the compressed bytes of cluster vc at byte coff, into out (one cluster).
func (im *Image) decodeCluster(out, src []byte, vc, coff int64) error {
	var err error
	if im.zstd {
		d := zstdPool.Get().(*zstd.Decoder)
		defer zstdPool.Put(d)
		// The frame alone, decoded whole straight into out (capped at its length): what qemu writes.
		if end, ok := zstdFrameEnd(src); ok {
			if res, err := d.DecodeAll(src[:end], out[:0:len(out)]); err == nil && len(res) == len(out) && (len(out) == 0 || &res[0] == &out[0]) {
				return nil
			}
		}
		// Anything else qemu may still read (several frames, or damage to report) goes through the
		// stream decoder, which stops when out is full, as qemu does.
		if err = d.Reset(bytes.NewReader(src)); err == nil {
			_, err = io.ReadFull(d, out)
		}
		d.Reset(nil)
	} else {
		err = inflateCluster(out, src)
	}
	if err != nil {
		return fmt.Errorf("qcow2 compressed cluster %d at byte %d does not inflate to %d bytes: %v", vc, coff, im.clusterSize, err)
	}
	return nil
}

// Span says where [off, off+n) lies when it is one state throughout: unallocated, or stored
// uncompressed and contiguously in the image file itself (not an external data file).
func (im *Image) Span(off, n int64) (layer.State, int64, bool) {
	first, err := im.lookup(off, n)
	if err != nil || first.compressed != 0 || first.st == layer.Data && im.external {
		return 0, 0, false
	}
	for pos := off + first.n; pos < off+n; {
		r, err := im.lookup(pos, off+n-pos)
		if err != nil || r.st != first.st || r.compressed != 0 || r.st == layer.Data && r.host != first.host+pos-off {
			return 0, 0, false
		}
		pos += r.n
	}
	return first.st, first.host, true
}

// Alloc reports the state of [off, off+n) cluster by cluster (subcluster by subcluster).
func (im *Image) Alloc(off, n int64, emit func(off, n int64, st layer.State)) error {
	end := off + n
	span := im.clusterSize * im.l2Entries
	for off < end {
		i := off / span
		if i >= int64(len(im.l1)) || im.l1[i]&offsetMask == 0 {
			m := min(end, (i+1)*span) - off
			emit(off, m, layer.None)
			off += m
			continue
		}
		r, err := im.lookup(off, end-off)
		if err != nil {
			return err
		}
		emit(off, r.n, r.st)
		off += r.n
	}
	return nil
}

// inflateCluster decodes a zlib (raw deflate) cluster straight into out, as qemu does: the cluster is
// good when it fills out, whether the stream ends there or runs on (the sector count rounds its size
// up, so src may hold the start of the next cluster too); a stream that ends short is damage.
func inflateCluster(out, src []byte) error {
	n, _, err := deflate.InflateRaw(out, src)
	if n == len(out) && (err == nil || errors.As(err, new(deflate.OutputLimitError))) {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("the stream ends after %d bytes", n)
	}
	return err
}
