package vddk

import "os"

// FileSpan tells where [off, off+n) of the virtual disk lies when the whole range is one contiguous run
// of one file: a flat extent, or consecutive uncompressed grains, in whichever link of the chain holds
// it. A FUSE server can then hand that file range to the kernel (splice) instead of copying the bytes.
// ok is false when the range is split, compressed, zero, or being written.
func (d *Disk) FileSpan(off, n int64) (f *os.File, fileOff int64, ok bool) {
	if off < 0 || n <= 0 || off+n > d.size {
		return nil, 0, false
	}
	for i := range d.links {
		f, fileOff, fallThrough, ok := d.links[i].span(off, n)
		if ok || !fallThrough || d.opts.SingleLink {
			return f, fileOff, ok
		}
	}
	return nil, 0, false
}

// span maps a range of one link; fallThrough says the whole range is unallocated here.
func (l *link) span(off, n int64) (f *os.File, fileOff int64, fallThrough, ok bool) {
	if off+n > l.size {
		return nil, 0, false, false
	}
	k := l.extentAt(off)
	start, end := l.extentRange(k)
	if off+n > end {
		return nil, 0, false, false
	}
	switch e := l.exts[k].(type) {
	case *flatExtent:
		return e.f, e.base + off - start, false, true
	case *foreignExtent:
		return e.span(off-start, n)
	case *grainExtent:
		if e.inflater != nil || e.w != nil {
			return nil, 0, false, false
		}
		rel := off - start
		gb := e.grainBytes
		g0, g1 := rel/gb, (rel+n-1)/gb
		first, err := e.m.lookup(g0)
		if err != nil || first.compressed {
			return nil, 0, false, false
		}
		for g := g0 + 1; g <= g1; g++ {
			r, err := e.m.lookup(g)
			if err != nil || r.state != first.state || r.compressed ||
				(first.state == allocData && r.off != first.off+(g-g0)*gb) {
				return nil, 0, false, false
			}
		}
		switch first.state {
		case allocNone:
			return nil, 0, true, false
		case allocData:
			fo := first.off + rel%gb
			if fo+n > e.fileSize {
				return nil, 0, false, false
			}
			return e.f, fo, false, true
		}
	}
	return nil, 0, false, false
}
