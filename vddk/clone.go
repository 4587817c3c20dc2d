package vddk

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	kzlib "github.com/klauspost/compress/zlib"
)

// CreateChild makes a new delta link (redo log) at childPath on top of the disk at parentPath
// (VixDiskLib_CreateChild): a monolithicSparse (or twoGbMaxExtentSparse) disk of the parent's capacity
// whose parentCID is the parent's CID and whose parentFileNameHint names the parent relative to the child.
func CreateChild(parentPath, childPath string, typ string) error {
	return CreateChildWith(parentPath, childPath, typ, Options{})
}

// CreateChildWith is CreateChild with the options the child will be opened with (AllowExternalPaths,
// IgnoreCIDMismatch): the child is opened with its chain once made, and removed again when it would
// not open, so that no child is made that Open refuses.
func CreateChildWith(parentPath, childPath string, typ string, opts Options) error {
	if err := createChild(parentPath, childPath, typ, opts); err != nil {
		return err
	}
	child, err := Open(childPath, childOptions(parentPath, opts))
	if err != nil {
		return removeNewChild(childPath, "child", err)
	}
	return child.Close()
}

// removeNewChild removes a child just made that would not open (err), and says so.
func removeNewChild(path, what string, err error) error {
	if uerr := Unlink(path); uerr != nil {
		os.Remove(path)
	}
	return &Error{Code: CodeOf(err), Path: path, Msg: "the new " + what + " would not open; it was removed", Err: err}
}

// childOptions are the options a new child and its parent are opened with.
func childOptions(parentPath string, opts Options) Options {
	return withRemoteParent(parentPath, Options{AllowExternalPaths: opts.AllowExternalPaths, IgnoreCIDMismatch: opts.IgnoreCIDMismatch, RemoteParent: opts.RemoteParent})
}

// withRemoteParent is opts with the parent's URI as RemoteParent when the parent is a network disk: the
// child names it by that URI, and opening the child reconnects to it.
func withRemoteParent(parentPath string, opts Options) Options {
	if IsRemote(parentPath) {
		opts.RemoteParent = parentPath
	}
	return opts
}

// createChild makes the child and closes its parent again, without opening the child: whoever opens
// it next (CreateChildWith, OpenRedo) removes it when it would not open.
func createChild(parentPath, childPath string, typ string, opts Options) error {
	if typ == "" {
		typ = TypeMonolithicSparse
	}
	if typ != TypeMonolithicSparse && typ != TypeTwoGbMaxExtentSparse {
		return newErr(ErrInvalidArg, childPath, "a child is monolithicSparse or twoGbMaxExtentSparse, not %s", typ)
	}
	parent, err := Open(parentPath, childOptions(parentPath, opts))
	if err != nil {
		return err
	}
	defer parent.Close()
	absChild, err := filepath.Abs(childPath)
	if err != nil {
		return wrapErr(ErrInvalidArg, childPath, err, "path")
	}
	hint, err := filepath.Rel(filepath.Dir(absChild), parent.Path())
	if err != nil {
		hint = parent.Path()
	}
	// The parent is closed (deferred) before the child opens it again: a server serving one client at a
	// time (qemu-nbd without -e) would not answer a second connection.
	return create(childPath, CreateParams{Type: typ, Capacity: parent.Size(), Adapter: "ide"}, childLink(parent, hint), "")
}

// childLink is what a new child records of its parent: its CID, its metadata, and hint as the name to
// find it by; a network parent is named by its URI instead, which the child reconnects by (when opened
// with Options.RemoteParent).
func childLink(parent *Disk, hint string) *createdLink {
	if parent.remoteURI != "" {
		hint = parent.remoteURI
	}
	return &createdLink{parentCID: parent.links[0].desc.CID, hint: filepath.ToSlash(hint), parentMeta: parent.Metadata()}
}

// Progress is told how many of total bytes a long operation has done.
type Progress func(done, total int64)

// Clone copies the disk (chain resolved) into a new disk of another type at dst (VixDiskLib_Clone),
// reading only allocated ranges and writing no all-zero grain. Type "raw" writes a raw image.
func (d *Disk) Clone(dst string, p CreateParams, progress Progress) error {
	p.Capacity = d.size
	if p.Adapter == "" {
		p.Adapter = d.Metadata()["adapterType"]
		if !contains(Adapters, p.Adapter) {
			p.Adapter = "ide"
		}
	}
	if p.HWVersion == 0 {
		p.HWVersion = 4
	}
	switch p.Type {
	case "raw":
		f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return wrapErr(ErrFileAlreadyExists, dst, err, "create raw image")
		}
		err = d.CopyRawProgress(f, progress) // a file: holes stay holes
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case TypeStreamOptimized:
		return d.writeStream(dst, p, progress)
	}
	if err := Create(dst, p); err != nil {
		return err
	}
	out, err := Open(dst, Options{Writable: true})
	if err != nil {
		return err
	}
	err = d.copyInto(out, progress)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyInto writes every allocated, non-zero 64 KiB piece of d into out.
func (d *Disk) copyInto(out *Disk, progress Progress) error {
	blocks, err := d.AllocatedBlocks(0, uint64(d.size)/SectorSize, 128)
	if err != nil {
		return err
	}
	ranges := make([][2]int64, 0, len(blocks))
	for _, b := range blocks {
		start, end := int64(b.Offset)*SectorSize, min(int64(b.Offset+b.Length)*SectorSize, d.size)
		ranges = append(ranges, [2]int64{start, end - start})
	}
	return copyRanges(d, out, ranges, true, progress)
}

// IsZero says whether b holds only zero bytes; it stops at the first other byte.
func IsZero(b []byte) bool {
	var z [4096]byte
	for len(b) > 0 {
		n := min(len(b), len(z))
		if !bytes.Equal(b[:n], z[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// writeStream writes a stream-optimized disk in the spec's layout (VMware's and VirtualBox's): header
// with the directory at the end, grains compressed in increasing order by all cores, each grain
// table after its grains, then directory, footer and end-of-stream marker.
func (d *Disk) writeStream(dst string, p CreateParams, progress Progress) error {
	sectors := (d.size + SectorSize - 1) / SectorSize
	l := newSparseLayout(sectors, true)
	l.overhead = 128
	link := &createdLink{parentCID: CIDNone}
	link.cid = newCID()
	desc := descriptorText(CreateParams{Type: TypeStreamOptimized, Capacity: d.size, Adapter: p.Adapter, HWVersion: p.HWVersion},
		sectors, link, "SPARSE", []extentFile{{filepath.Base(dst), sectors}})
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return wrapErr(ErrFileAlreadyExists, dst, err, "create")
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(dst)
		}
	}()
	flags := uint32(flagNewlineCheck | flagCompressed | flagMarkers)
	head := make([]byte, l.overhead*SectorSize)
	copy(head, l.header(flags, 3, gdAtEnd))
	copy(head[SectorSize:], desc)
	w := &sectorWriter{f: f}
	if err := w.write(head); err != nil {
		return wrapErr(ErrFileError, dst, err, "write header")
	}

	gb := int64(l.grainSize) * SectorSize
	grains := (d.size + gb - 1) / gb
	gd := make([]uint32, l.numGTs)
	gt := make([]uint32, l.gtesPerGT)
	curGT := int64(-1)
	flushGT := func() error {
		if curGT < 0 {
			return nil
		}
		used := false
		for _, e := range gt {
			used = used || e != 0
		}
		if used {
			if err := w.write(streamMarker(l.gtSectorsPerTable, markerGT)); err != nil {
				return err
			}
			gd[curGT] = uint32(w.sector())
			b := make([]byte, l.gtSectorsPerTable*SectorSize)
			for i, e := range gt {
				binary.LittleEndian.PutUint32(b[4*i:], e)
			}
			if err := w.write(b); err != nil {
				return err
			}
		}
		clear(gt)
		return nil
	}

	// Compress in parallel, write in order.
	type job struct {
		g    int64
		data []byte // nil: all zeros
		err  error
		done chan struct{}
	}
	blocks, err := d.AllocatedBlocks(0, uint64(sectors), l.grainSize)
	if err != nil {
		return err
	}
	jobs := make(chan *job, 64)
	order := make(chan *job, 64)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			raw := make([]byte, gb)
			var zbuf bytes.Buffer
			zw, _ := kzlib.NewWriterLevel(&zbuf, kzlib.DefaultCompression)
			for j := range jobs {
				n := min(gb, d.size-j.g*gb)
				clear(raw)
				if j.err = d.readLink(0, raw[:n], j.g*gb); j.err == nil && !IsZero(raw[:n]) {
					zbuf.Reset()
					zw.Reset(&zbuf)
					zw.Write(raw[:n])
					zw.Close()
					rec := make([]byte, 12+zbuf.Len())
					binary.LittleEndian.PutUint64(rec, uint64(j.g*gb/SectorSize))
					binary.LittleEndian.PutUint32(rec[8:], uint32(zbuf.Len()))
					copy(rec[12:], zbuf.Bytes())
					j.data = rec
				}
				close(j.done)
			}
		})
	}
	stop := make(chan struct{})
	go func() {
		defer close(order)
		defer close(jobs)
		for _, b := range blocks {
			for s := b.Offset; s < b.Offset+b.Length; s += l.grainSize {
				j := &job{g: int64(s / l.grainSize), done: make(chan struct{})}
				select {
				case order <- j:
				case <-stop:
					return
				}
				jobs <- j
			}
		}
	}()
	var werr error
	var done int64
	for j := range order {
		<-j.done
		if werr != nil {
			continue
		}
		if j.err != nil {
			werr = j.err
			close(stop)
			continue
		}
		if t := j.g / int64(l.gtesPerGT); t != curGT {
			if werr = flushGT(); werr != nil {
				close(stop)
				continue
			}
			curGT = t
		}
		if j.data != nil {
			gt[j.g%int64(l.gtesPerGT)] = uint32(w.sector())
			if werr = w.write(j.data); werr != nil {
				close(stop)
				continue
			}
		}
		done = min(d.size, (j.g+1)*gb)
		if progress != nil {
			progress(done, d.size)
		}
	}
	wg.Wait()
	if werr != nil {
		return wrapErr(ErrFileError, dst, werr, "write stream")
	}
	if err := flushGT(); err != nil {
		return wrapErr(ErrFileError, dst, err, "write grain table")
	}
	if grains > 0 && w.sector() >= 1<<32 {
		return newErr(ErrDiskFull, dst, "the stream grew past what 32-bit grain tables address")
	}
	gdb := make([]byte, l.gdSectors*SectorSize)
	for i, e := range gd {
		binary.LittleEndian.PutUint32(gdb[4*i:], e)
	}
	if err := w.write(streamMarker(l.gdSectors, markerGD)); err != nil {
		return wrapErr(ErrFileError, dst, err, "write")
	}
	gdSector := w.sector()
	tail := append(gdb, streamMarker(1, markerFooter)...)
	tail = append(tail, l.header(flags, 3, uint64(gdSector))...)
	tail = append(tail, streamMarker(0, markerEOS)...)
	if err := w.write(tail); err != nil {
		return wrapErr(ErrFileError, dst, err, "write footer")
	}
	if progress != nil {
		progress(d.size, d.size)
	}
	ok = true
	return f.Close()
}

func streamMarker(n uint64, typ uint32) []byte {
	m := make([]byte, SectorSize)
	binary.LittleEndian.PutUint64(m, n)
	binary.LittleEndian.PutUint32(m[12:], typ)
	return m
}

// sectorWriter appends records padded to whole sectors.
type sectorWriter struct {
	f   *os.File
	off int64
}

func (w *sectorWriter) sector() int64 { return w.off / SectorSize }

func (w *sectorWriter) write(b []byte) error {
	pad := (SectorSize - len(b)%SectorSize) % SectorSize
	if pad > 0 {
		b = append(b, make([]byte, pad)...)
	}
	_, err := w.f.Write(b)
	w.off += int64(len(b))
	return err
}
