package vddk

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
)

// Writing: only the top link of a chain is written; parents are never opened for writing.

// extentWriter is implemented by extents that can be written.
type extentWriter interface {
	writeAt(p []byte, off int64, parent parentReader) error
	// flush makes written data durable and marks the extent cleanly closed.
	flush(closing bool) error
}

// WriteAt writes p at byte offset off of the disk (VixDiskLib_Write), in the top link only: grains not
// yet in it are allocated, with the rest of each grain copied from the parents. The first write after
// Open gives the disk a new CID, as VMware and qemu do.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if !d.opts.Writable {
		return 0, newErr(ErrFileReadOnly, d.path, "the disk was opened read-only")
	}
	if off < 0 || off > d.size || int64(len(p)) > d.size-off {
		return 0, newErr(ErrDiskOutOfRange, d.path, "write of %d bytes at %d lies beyond the disk's %d bytes", len(p), off, d.size)
	}
	if err := d.firstWrite(); err != nil {
		return 0, err
	}
	l := d.links[0]
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		k := l.extentAt(pos)
		start, end := l.extentRange(k)
		n := int(min(int64(len(p)-done), end-pos))
		w, ok := l.exts[k].(extentWriter)
		inf := l.exts[k].info()
		if !ok || inf.Access != "RW" {
			return done, newErr(ErrFileReadOnly, d.path, "extent %d (%s %s %q) cannot be written", k+1, inf.Access, inf.Type, inf.Filename)
		}
		parent := func(q []byte, o int64) error {
			if len(d.links) > 1 {
				return d.readLink(1, q, o+start)
			}
			clear(q)
			return nil
		}
		if err := w.writeAt(p[done:done+n], pos-start, parent); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// WriteSectors writes count sectors at sector start (VixDiskLib_Write).
func (d *Disk) WriteSectors(start, count uint64, buf []byte) error {
	if uint64(len(buf)) < count*SectorSize {
		return newErr(ErrInvalidArg, d.path, "buffer of %d bytes is too small for %d sectors", len(buf), count)
	}
	_, err := d.WriteAt(buf[:count*SectorSize], int64(start*SectorSize))
	return err
}

// Flush makes every write durable (VixDiskLib_Flush).
func (d *Disk) Flush() error {
	if !d.opts.Writable {
		return nil
	}
	for _, e := range d.links[0].exts {
		if w, ok := e.(extentWriter); ok {
			if err := w.flush(false); err != nil {
				return err
			}
		}
	}
	if f := d.links[0].descFile; f != nil {
		return f.Sync()
	}
	return nil
}

func (l *link) extentAt(off int64) int {
	k := 0
	for k+1 < len(l.starts) && l.starts[k+1] <= off {
		k++
	}
	return k
}

func (l *link) extentRange(k int) (int64, int64) {
	end := l.size
	if k+1 < len(l.starts) {
		end = l.starts[k+1]
	}
	return l.starts[k], end
}

func (l *link) ownsDescFile() bool {
	for _, e := range l.exts {
		switch x := e.(type) {
		case *grainExtent:
			if x.f == l.descFile {
				return true
			}
		case *flatExtent:
			if x.f == l.descFile {
				return true
			}
		}
	}
	return false
}

// firstWrite gives the top link a new CID once per open, rewriting its descriptor in place.
func (d *Disk) firstWrite() error {
	d.cidOnce.Do(func() {
		l := d.links[0]
		if l.descRoom == 0 && !l.textDesc {
			return // a bare extent file has no descriptor to update
		}
		l.desc.CID = newCID()
		d.cidErr = l.rewriteDescriptor()
	})
	return d.cidErr
}

// rewriteDescriptor writes the descriptor back with its CID, parentCID and parentFileNameHint as they
// are now, keeping every other line verbatim and in order.
func (l *link) rewriteDescriptor() error {
	if l.descFile == nil {
		return newErr(ErrFileReadOnly, l.path, "the descriptor was not opened for writing")
	}
	if l.descRoom == 0 && !l.textDesc {
		return newErr(ErrDiskNotSupported, l.path, "this extent file has no descriptor to write")
	}
	text := renderDescriptor(l.desc)
	if l.descRoom > 0 {
		if int64(len(text)) > l.descRoom {
			return newErr(ErrDiskFull, l.path, "descriptor of %d bytes does not fit its %d-byte room", len(text), l.descRoom)
		}
		buf := make([]byte, l.descRoom)
		copy(buf, text)
		if _, err := l.descFile.WriteAt(buf, l.descOff); err != nil {
			return wrapErr(ErrFileError, l.path, err, "write embedded descriptor")
		}
		return nil
	}
	if _, err := l.descFile.WriteAt([]byte(text), 0); err != nil {
		return wrapErr(ErrFileError, l.path, err, "write descriptor")
	}
	if err := l.descFile.Truncate(int64(len(text))); err != nil {
		return wrapErr(ErrFileError, l.path, err, "truncate descriptor")
	}
	return nil
}

// renderDescriptor turns a descriptor back into text: its original lines with the chain keys and the
// disk database values replaced where they changed; keys it did not have are added in VMware's places.
func renderDescriptor(d *Descriptor) string {
	values := map[string]string{
		"cid":       fmt.Sprintf("%08x", d.CID),
		"parentcid": fmt.Sprintf("%08x", d.ParentCID),
	}
	if d.ParentFileNameHint != "" {
		values["parentfilenamehint"] = fmt.Sprintf("%q", d.ParentFileNameHint)
	}
	seen := map[string]bool{}
	var out []string
	ext := 0
	for _, line := range d.Lines {
		s := strings.TrimSpace(line)
		if isExtentLine(s) && ext < len(d.Extents) {
			out = append(out, formatExtentLine(d.Extents[ext]))
			ext++
			continue
		}
		key, _, ok := strings.Cut(s, "=")
		if ok && s != "" && s[0] != '#' && !isExtentLine(s) {
			k := strings.TrimSpace(key)
			lk := strings.ToLower(k)
			if v, ok := values[lk]; ok {
				out = append(out, k+"="+v)
				seen[lk] = true
				continue
			}
			if strings.HasPrefix(lk, "ddb.") {
				name := k[len("ddb."):]
				if v, ok := d.DDB[name]; ok {
					out = append(out, fmt.Sprintf("ddb.%s = %q", name, v))
					seen["ddb."+name] = true
				}
				continue // removed keys disappear
			}
		}
		out = append(out, line)
	}
	// Keys that were missing: chain keys after createType, disk database keys at the end.
	for _, k := range []string{"parentfilenamehint"} {
		if v, ok := values[k]; ok && !seen[k] {
			for i, line := range out {
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "createtype") {
					out = append(out[:i+1], append([]string{"parentFileNameHint=" + v}, out[i+1:]...)...)
					break
				}
			}
		}
	}
	for _, name := range d.DDBOrder {
		if v, ok := d.DDB[name]; ok && !seen["ddb."+name] {
			out = append(out, fmt.Sprintf("ddb.%s = %q", name, v))
		}
	}
	text := strings.Join(out, "\n")
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text
}

// Flat extents are written in place.
func (e *flatExtent) writeAt(p []byte, off int64, _ parentReader) error {
	if _, err := e.f.WriteAt(p, e.base+off); err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "write")
	}
	return nil
}

func (e *flatExtent) flush(bool) error { return e.f.Sync() }

// sparseWriter is the writing state of a hosted sparse extent.
type sparseWriter struct {
	mu         sync.Mutex
	rgd        []uint32 // redundant directory, nil when the extent has none
	rgdOffset  int64
	gdOffset   int64
	nextSector int64 // where the next grain (or grain table) is appended
}

// enableWrites prepares a hosted sparse extent for writing: loads the redundant directory and marks
// the extent as open (uncleanShutdown), as VMware does.
func (e *grainExtent) enableWrites(h *sparseHeader, hdr *sparseHeader) error {
	m, ok := e.m.(*sparseMapper)
	if !ok || e.inflater != nil || m.streamMap != nil {
		return nil // COWD, seSparse and stream-optimized extents stay read-only
	}
	w := &sparseWriter{gdOffset: int64(hdr.GDOffset) * SectorSize}
	if hdr.Flags&flagRedundantGD != 0 && hdr.RGDOffset != 0 {
		gd, err := readGD(e.f, e.inf.Path, e.fileSize, hdr.RGDOffset, uint64(len(m.gd)), m.gtEntries*4)
		if err != nil {
			return wrapErr(ErrDiskNeedsRepair, e.inf.Path, err, "redundant grain directory")
		}
		w.rgd, w.rgdOffset = gd, int64(hdr.RGDOffset)*SectorSize
	}
	gs := int64(h.GrainSize)
	w.nextSector = (e.fileSize/SectorSize + gs - 1) / gs * gs
	if _, err := e.f.WriteAt([]byte{1}, 72); err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "mark the extent open")
	}
	e.w = w
	return nil
}

func (e *grainExtent) flush(closing bool) error {
	if e.w == nil {
		return newErr(ErrFileReadOnly, e.inf.Path, "this kind of extent (%s) cannot be written", e.inf.Format)
	}
	if err := e.f.Sync(); err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "sync")
	}
	if closing {
		if _, err := e.f.WriteAt([]byte{0}, 72); err != nil {
			return wrapErr(ErrFileError, e.inf.Path, err, "mark the extent closed")
		}
		return e.f.Sync()
	}
	return nil
}

// writeAt writes into grains, allocating those the extent does not hold yet.
func (e *grainExtent) writeAt(p []byte, off int64, parent parentReader) error {
	if e.w == nil {
		return newErr(ErrDiskNotSupported, e.inf.Path, "writing to %s extents is not supported (stream-optimized disks are written whole, by conversion)", e.inf.Format)
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.rw.Lock() // readers of this extent wait while tables change
	defer e.rw.Unlock()
	m := e.m.(*sparseMapper)
	gb := e.grainBytes
	for len(p) > 0 {
		g := off / gb
		in := off % gb
		n := min(int64(len(p)), gb-in)
		ref, err := m.lookup(g)
		if err != nil {
			return err
		}
		if in == 0 && int64(len(p)) >= gb && ref.state != allocData {
			// Whole new grains: append a run of them in one write, then their table entries in one.
			k, err := e.allocRun(m, g, p)
			if err != nil {
				return err
			}
			p, off = p[k*gb:], off+k*gb
			continue
		}
		if ref.state == allocData {
			if _, err := e.f.WriteAt(p[:n], ref.off+in); err != nil {
				return wrapErr(ErrFileError, e.inf.Path, err, "write grain")
			}
		} else if err := e.allocGrain(m, g, in, p[:n], ref.state, parent); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// allocGrain appends a new grain holding data at in, the rest from the parent (or zeros for a zeroed
// grain), then publishes it in the grain table and its redundant copy. A crash before the table update
// leaves an unreferenced grain, never a table entry pointing at garbage.
func (e *grainExtent) allocGrain(m *sparseMapper, g, in int64, data []byte, st allocState, parent parentReader) error {
	gb := e.grainBytes
	gi := g / m.gtEntries
	if gi >= int64(len(m.gd)) {
		return newErr(ErrDiskOutOfRange, e.inf.Path, "grain %d lies beyond the grain directory", g)
	}
	if m.gd[gi] == 0 {
		if err := e.allocTable(m, gi); err != nil {
			return err
		}
	}
	grain := make([]byte, gb)
	if st == allocNone {
		// Copy-on-write: the whole grain from the parent, then the new bytes over it.
		n := min(gb, e.size-g*gb)
		if n > 0 {
			if err := parent(grain[:n], g*gb); err != nil {
				return err
			}
		}
	}
	copy(grain[in:], data)
	sector := e.w.nextSector
	if sector+gb/SectorSize > 1<<32 {
		return newErr(ErrDiskFull, e.inf.Path, "the extent file cannot grow past 2 TiB (32-bit grain table entries)")
	}
	if _, err := e.f.WriteAt(grain, sector*SectorSize); err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "write new grain")
	}
	e.w.nextSector += gb / SectorSize
	e.fileSize = max(e.fileSize, e.w.nextSector*SectorSize)
	m.fileSize = e.fileSize
	return e.setGTE(m, g, uint32(sector))
}

// allocRun appends whole grains g, g+1, … (all unallocated, all in one grain table, fully covered by p)
// with a single write, then publishes them with one write per table copy. It returns how many.
func (e *grainExtent) allocRun(m *sparseMapper, g int64, p []byte) (int64, error) {
	gb := e.grainBytes
	gi := g / m.gtEntries
	if gi >= int64(len(m.gd)) {
		return 0, newErr(ErrDiskOutOfRange, e.inf.Path, "grain %d lies beyond the grain directory", g)
	}
	if m.gd[gi] == 0 {
		if err := e.allocTable(m, gi); err != nil {
			return 0, err
		}
	}
	k := int64(1)
	for (g+k)/m.gtEntries == gi && (k+1)*gb <= int64(len(p)) && k < 256 {
		ref, err := m.lookup(g + k)
		if err != nil {
			return 0, err
		}
		if ref.state == allocData {
			break
		}
		k++
	}
	sector := e.w.nextSector
	if sector+k*gb/SectorSize > 1<<32 {
		return 0, newErr(ErrDiskFull, e.inf.Path, "the extent file cannot grow past 2 TiB (32-bit grain table entries)")
	}
	if _, err := e.f.WriteAt(p[:k*gb], sector*SectorSize); err != nil {
		return 0, wrapErr(ErrFileError, e.inf.Path, err, "write new grains")
	}
	e.w.nextSector += k * gb / SectorSize
	e.fileSize = max(e.fileSize, e.w.nextSector*SectorSize)
	m.fileSize = e.fileSize
	entries := make([]byte, 4*k)
	for i := range k {
		binary.LittleEndian.PutUint32(entries[4*i:], uint32(sector+i*gb/SectorSize))
	}
	tables := []uint32{m.gd[gi]}
	if e.w.rgd != nil && e.w.rgd[gi] != 0 {
		tables = append(tables, e.w.rgd[gi])
	}
	for _, t := range tables {
		if _, err := e.f.WriteAt(entries, int64(t)*SectorSize+4*(g%m.gtEntries)); err != nil {
			return 0, wrapErr(ErrFileError, e.inf.Path, err, "write grain table entries")
		}
	}
	if gt, ok := m.gts.get(m.gd[gi]); ok {
		for i := range k {
			gt[(g+i)%m.gtEntries] = uint32(sector + i*gb/SectorSize)
		}
	}
	return k, nil
}

// setGTE writes one grain table entry, primary then redundant, and updates the cached table.
func (e *grainExtent) setGTE(m *sparseMapper, g int64, v uint32) error {
	gi := g / m.gtEntries
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	tables := []uint32{m.gd[gi]}
	if e.w.rgd != nil && e.w.rgd[gi] != 0 {
		tables = append(tables, e.w.rgd[gi])
	}
	for _, t := range tables {
		if _, err := e.f.WriteAt(b[:], int64(t)*SectorSize+4*(g%m.gtEntries)); err != nil {
			return wrapErr(ErrFileError, e.inf.Path, err, "write grain table entry")
		}
	}
	if gt, ok := m.gts.get(m.gd[gi]); ok {
		gt[g%m.gtEntries] = v
	}
	return nil
}

// allocTable appends zeroed grain tables (primary and redundant) for directory entry gi, then points
// the directories at them (GDE 0 exists in stream-converted and damaged files).
func (e *grainExtent) allocTable(m *sparseMapper, gi int64) error {
	gtBytes := m.gtEntries * 4
	gtSectors := (gtBytes + SectorSize - 1) / SectorSize
	zero := make([]byte, gtSectors*SectorSize)
	alloc := func() (int64, error) {
		s := e.w.nextSector
		if _, err := e.f.WriteAt(zero, s*SectorSize); err != nil {
			return 0, wrapErr(ErrFileError, e.inf.Path, err, "write new grain table")
		}
		gs := e.grainBytes / SectorSize
		e.w.nextSector = (s + gtSectors + gs - 1) / gs * gs
		e.fileSize = max(e.fileSize, e.w.nextSector*SectorSize)
		m.fileSize = e.fileSize
		return s, nil
	}
	var b [4]byte
	if e.w.rgd != nil {
		s, err := alloc()
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b[:], uint32(s))
		if _, err := e.f.WriteAt(b[:], e.w.rgdOffset+4*gi); err != nil {
			return wrapErr(ErrFileError, e.inf.Path, err, "write redundant grain directory")
		}
		e.w.rgd[gi] = uint32(s)
	}
	s, err := alloc()
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:], uint32(s))
	if _, err := e.f.WriteAt(b[:], e.w.gdOffset+4*gi); err != nil {
		return wrapErr(ErrFileError, e.inf.Path, err, "write grain directory")
	}
	m.gd[gi] = uint32(s)
	return nil
}

// WriteMetadata sets a disk database key of the top link (VixDiskLib_WriteMetadata); an empty value
// removes the key. The key is given without the "ddb." prefix.
func (d *Disk) WriteMetadata(key, value string) error {
	if !d.opts.Writable {
		return newErr(ErrFileReadOnly, d.path, "the disk was opened read-only")
	}
	if key == "" || strings.ContainsAny(key, "=\"\n\r") || strings.ContainsAny(value, "\"\n\r") {
		return newErr(ErrInvalidArg, d.path, "metadata key %q or its value holds a character a descriptor cannot", key)
	}
	desc := d.links[0].desc
	if value == "" {
		delete(desc.DDB, key)
	} else {
		if _, ok := desc.DDB[key]; !ok {
			desc.DDBOrder = append(desc.DDBOrder, key)
		}
		desc.DDB[key] = value
	}
	return d.links[0].rewriteDescriptor()
}

// formatExtentLine writes an extent line the way VMware does.
func formatExtentLine(e ExtentLine) string {
	s := fmt.Sprintf("%s %d %s", e.Access, e.Sectors, e.Type)
	if e.Filename != "" {
		s += fmt.Sprintf(" %q", e.Filename)
	}
	if e.HasOffset || e.Type == "FLAT" {
		s += fmt.Sprintf(" %d", e.Offset)
	}
	return s
}
