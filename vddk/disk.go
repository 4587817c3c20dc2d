// Package vddk is VixDiskLib in Go: it opens VMDK virtual disks of every kind — monolithic and split,
// sparse and flat, stream-optimized, ESXi vmfs/COWD/seSparse, custom multi-extent descriptors — with
// their whole chain of delta links, and serves them as an io.ReaderAt.
package vddk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
)

// Disk is an opened virtual disk: a chain of links, the first being the one that was named. It is an
// io.ReaderAt safe for concurrent use.
type Disk struct {
	path    string
	links   []*link
	size    int64
	opts    Options
	touched []string // files read without O_NOATIME
	cidOnce sync.Once
	cidErr  error
	// remoteURI is the URI a network disk was opened by, credentials included (path has them removed):
	// the parent hint of a child made over it.
	remoteURI string
}

// Open opens the disk at path and, unless opts.SingleLink, its parents (VixDiskLib_Open).
func Open(path string, opts Options) (*Disk, error) {
	if IsRemote(path) {
		return openRemoteDisk(path, opts)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, wrapErr(ErrInvalidArg, path, err, "path")
	}
	root, err := confine.OpenDir(filepath.Dir(abs))
	if err != nil {
		return nil, wrapErr(ErrFileNotFound, path, err, "folder")
	}
	// The named file itself is the user's choice: a symlink is followed, a block device is taken.
	f, err := confine.OpenPath(abs, openFlag(opts.Writable), true)
	if err != nil {
		root.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, wrapErr(ErrFileNotFound, abs, err, "open disk")
		}
		return nil, wrapErr(ErrFileAccessError, abs, err, "open disk")
	}
	return openChain(opened{f: f, dir: root, rel: filepath.Base(abs), path: abs}, opts)
}

// openChain opens the disk whose first link is the open file op (which it then owns, with its folder).
func openChain(op opened, opts Options) (*Disk, error) {
	abs := op.path
	o := &opener{opts: opts, seen: map[fileID]string{}, writable: opts.Writable, tables: newDiskTables()}
	top, err := o.openLink(op)
	if err != nil {
		return nil, err
	}
	o.writable = false // parents are only ever read
	d := &Disk{path: abs, links: []*link{top}, size: top.size, opts: opts}
	for cur := top; !opts.SingleLink && cur.hasParent(); {
		if len(d.links) >= MaxChainLength {
			d.Close()
			return nil, newErr(ErrDiskTooManyRedo, abs, "the chain has more than %d links", MaxChainLength)
		}
		parent, err := o.openParent(cur)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.links = append(d.links, parent)
		cur = parent
	}
	d.touched = o.touched
	return d, nil
}

// AccessTimesTouched lists the files this disk reads without O_NOATIME: the kernel lets only a file's
// owner (or CAP_FOWNER) keep its access time, so reading these updates it.
func (d *Disk) AccessTimesTouched() []string { return d.touched }

// openParent opens a link's parent: in the link's folder, or in any folder when the file found there
// is itself a VMDK (linked clones keep their base in a sibling folder or on another datastore). The
// parent's own extents are confined to the parent's folder.
func (o *opener) openParent(child *link) (*link, error) {
	if child.foreign != nil {
		return o.openForeignParent(child)
	}
	hint := child.desc.ParentFileNameHint
	if IsRemote(hint) {
		return o.openRemoteParent(child, hint)
	}
	fail := func(err error) error {
		return &Error{Code: ErrDiskOpenParent, Path: child.path, Msg: fmt.Sprintf("cannot open parent %q", hint), Err: err}
	}
	var refused error
	for _, c := range candidates(child.root.Path, hint) {
		p, err := o.openParentAt(child.root, c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var verr *Error
		if errors.As(err, &verr) {
			return nil, fail(err) // the parent was found and is damaged or loops: say so
		}
		if err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		if p.desc.CID != child.desc.ParentCID && !o.opts.IgnoreCIDMismatch {
			p.close()
			return nil, newErr(ErrDiskCIDMismatch, child.path, "expects its parent %s to have CID %08x, it has %08x (the parent changed after the child was made)", p.path, child.desc.ParentCID, p.desc.CID)
		}
		return p, nil
	}
	if refused != nil {
		return nil, fail(&Error{Code: ErrFileAccessError, Msg: "refused" + externalHint(refused), Err: refused})
	}
	shown := hint
	if cands := candidates(child.root.Path, hint); len(cands) > 0 {
		shown = cands[0]
	}
	return nil, fail(newErr(ErrFileNotFound, shown, "parent %q not found", hint))
}

// openParentAt opens the parent candidate c: its folder first, then the file beneath that folder, so
// that the folder its extents are confined to is the one it was found in.
func (o *opener) openParentAt(childDir *confine.Dir, c string) (*link, error) {
	var dir *confine.Dir
	var err error
	rel, relErr := childDir.Rel(c)
	if relErr == nil {
		dir, err = childDir.OpenDir(filepath.Dir(rel))
	}
	outside := relErr != nil || errors.Is(err, confine.ErrOutside)
	if outside {
		dir, err = confine.OpenDir(filepath.Dir(c))
	}
	if err != nil {
		return nil, err
	}
	f, err := dir.Open(filepath.Base(c), os.O_RDONLY, o.opts.AllowExternalPaths)
	if errors.Is(err, confine.ErrOutside) {
		// The file is a symlink leaving its folder: take the folder it points into.
		dir.Close()
		real, rerr := filepath.EvalSymlinks(c)
		if rerr != nil {
			return nil, rerr
		}
		if dir, err = confine.OpenDir(filepath.Dir(real)); err != nil {
			return nil, err
		}
		c, outside = real, true
		f, err = dir.Open(filepath.Base(c), os.O_RDONLY, o.opts.AllowExternalPaths)
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	if outside && !o.opts.AllowExternalPaths {
		if ok, verr := isDiskImageFile(f); verr != nil || !ok {
			f.Close()
			dir.Close()
			return nil, fmt.Errorf("%s %w and is not a VMDK or another disk image", c, confine.ErrOutside)
		}
	}
	return o.openLink(opened{f: f, dir: dir, rel: filepath.Base(c), path: c})
}

// Close closes every file of the chain; a writable disk is flushed and marked cleanly closed first.
func (d *Disk) Close() error {
	var first error
	if d.opts.Writable {
		for _, e := range d.links[0].exts {
			if w, ok := e.(extentWriter); ok {
				if g, isGrain := e.(*grainExtent); isGrain && g.w == nil {
					continue
				}
				if err := w.flush(true); err != nil && first == nil {
					first = err
				}
			}
		}
	}
	for _, l := range d.links {
		if err := l.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Size is the virtual disk's capacity in bytes.
func (d *Disk) Size() int64 { return d.size }

// Path is the absolute path of the disk that was opened.
func (d *Disk) Path() string { return d.path }

// ReadAt reads the virtual disk with io.ReaderAt semantics (io.EOF at the end); chain resolved.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, newErr(ErrDiskOutOfRange, d.path, "negative offset %d", off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > d.size-off {
		n = int(d.size - off)
		eof = io.EOF
	}
	if err := d.readLink(0, p[:n], off); err != nil {
		return 0, err
	}
	return n, eof
}

// ReadSectors reads count 512-byte sectors from sector start (VixDiskLib_Read); buf must hold them.
func (d *Disk) ReadSectors(start, count uint64, buf []byte) error {
	if uint64(len(buf)) < count*SectorSize {
		return newErr(ErrInvalidArg, d.path, "buffer of %d bytes is too small for %d sectors", len(buf), count)
	}
	total := uint64(d.size) / SectorSize
	if start > total || count > total-start {
		return newErr(ErrDiskOutOfRange, d.path, "sectors %d+%d lie beyond the disk's %d sectors", start, count, total)
	}
	return d.readLink(0, buf[:count*SectorSize], int64(start*SectorSize))
}

// readLink reads p at off from link i; what the link does not hold comes from link i+1, or is zero.
func (d *Disk) readLink(i int, p []byte, off int64) error {
	l := d.links[i]
	if off >= l.size {
		clear(p)
		return nil
	}
	if int64(len(p)) > l.size-off {
		clear(p[l.size-off:])
		p = p[:l.size-off]
	}
	for len(p) > 0 {
		k := sort.Search(len(l.starts), func(j int) bool { return l.starts[j] > off }) - 1
		start := l.starts[k]
		end := l.size
		if k+1 < len(l.starts) {
			end = l.starts[k+1]
		}
		n := min(int64(len(p)), end-off)
		parent := func(q []byte, o int64) error {
			if i+1 < len(d.links) {
				return d.readLink(i+1, q, o+start)
			}
			clear(q)
			return nil
		}
		if err := l.exts[k].readAt(p[:n], off-start, parent); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// Block is an allocated range, in sectors (VixDiskLibBlock).
type Block struct {
	Offset uint64 `json:"offset"`
	Length uint64 `json:"length"`
}

// AllocatedBlocks lists the chunks of [start, start+count) (sectors) that hold data anywhere in the chain
// (VixDiskLib_QueryAllocatedBlocks). Chunks are chunkSize sectors, aligned to multiples of chunkSize;
// a chunk is listed when any of its bytes is stored. Unlisted chunks read as zeros.
func (d *Disk) AllocatedBlocks(start, count, chunkSize uint64) ([]Block, error) {
	total := uint64(d.size) / SectorSize
	if chunkSize == 0 {
		return nil, newErr(ErrInvalidArg, d.path, "chunk size must be at least one sector")
	}
	if start > total || count > total-start {
		return nil, newErr(ErrDiskOutOfRange, d.path, "sectors %d+%d lie beyond the disk's %d sectors", start, count, total)
	}
	var blocks []Block
	add := func(off, n int64) {
		first := uint64(off) / SectorSize / chunkSize * chunkSize
		last := (uint64(off+n) + SectorSize - 1) / SectorSize
		last = (last + chunkSize - 1) / chunkSize * chunkSize
		first = max(first, start/chunkSize*chunkSize)
		if k := len(blocks); k > 0 && blocks[k-1].Offset+blocks[k-1].Length >= first {
			blocks[k-1].Length = max(blocks[k-1].Length, last-blocks[k-1].Offset)
			return
		}
		blocks = append(blocks, Block{first, last - first})
	}
	var walk func(i int, off, n int64) error
	walk = func(i int, off, n int64) error {
		l := d.links[i]
		end := min(off+n, l.size)
		for off < end {
			k := sort.Search(len(l.starts), func(j int) bool { return l.starts[j] > off }) - 1
			es := l.starts[k]
			ee := l.size
			if k+1 < len(l.starts) {
				ee = l.starts[k+1]
			}
			m := min(end, ee) - off
			var inner error
			err := l.exts[k].alloc(off-es, m, func(o, c int64, st allocState) {
				switch {
				case inner != nil:
				case st == allocData:
					add(o+es, c)
				case st == allocNone && i+1 < len(d.links) && !d.opts.SingleLink:
					inner = walk(i+1, o+es, c)
				}
			})
			if err == nil {
				err = inner
			}
			if err != nil {
				return err
			}
			off += m
		}
		return nil
	}
	if err := walk(0, int64(start*SectorSize), int64(count*SectorSize)); err != nil {
		return nil, err
	}
	// Parents report after children: sort and merge.
	slices.SortFunc(blocks, func(a, b Block) int { return int(int64(a.Offset) - int64(b.Offset)) })
	merged := blocks[:0]
	for _, b := range blocks {
		if k := len(merged); k > 0 && merged[k-1].Offset+merged[k-1].Length >= b.Offset {
			merged[k-1].Length = max(merged[k-1].Length, b.Offset+b.Length-merged[k-1].Offset)
			continue
		}
		merged = append(merged, b)
	}
	// Clip to the queried range.
	end := start + count
	out := merged[:0]
	for _, b := range merged {
		s, e := max(b.Offset, start), min(b.Offset+b.Length, end)
		if s < e {
			out = append(out, Block{s, e - s})
		}
	}
	return out, nil
}

// Geometry is a cylinders/heads/sectors triple.
type Geometry struct {
	Cylinders uint32 `json:"cylinders"`
	Heads     uint32 `json:"heads"`
	Sectors   uint32 `json:"sectors"`
}

// LinkInfo describes one link of the chain, top first.
type LinkInfo struct {
	Path               string       `json:"path"`
	Format             string       `json:"format"` // vmdk, raw, qcow2, vhd, vhdx, vdi
	CreateType         string       `json:"create_type"`
	CID                string       `json:"cid"`
	ParentCID          string       `json:"parent_cid"`
	ParentFileNameHint string       `json:"parent_file_name_hint,omitempty"`
	Capacity           int64        `json:"capacity"`
	Extents            []ExtentInfo `json:"extents"`
}

// Info is what VixDiskLib_GetInfo reports, and more: the chain and every extent.
type Info struct {
	Path               string     `json:"path"`
	Format             string     `json:"format"`   // of the opened file: vmdk, raw, qcow2, vhd, vhdx, vdi
	Capacity           int64      `json:"capacity"` // bytes
	Sectors            int64      `json:"sectors"`
	CreateType         string     `json:"create_type"`
	DiskType           int        `json:"disk_type"` // VixDiskLib disk type enum
	Kind               string     `json:"kind"`      // hosted or managed (ESXi)
	AdapterType        string     `json:"adapter_type,omitempty"`
	Geometry           *Geometry  `json:"geometry,omitempty"`
	BIOSGeometry       *Geometry  `json:"bios_geometry,omitempty"`
	HWVersion          int        `json:"hw_version,omitempty"`
	UUID               string     `json:"uuid,omitempty"`
	CID                string     `json:"cid"`
	ParentCID          string     `json:"parent_cid"`
	ParentFileNameHint string     `json:"parent_file_name_hint,omitempty"`
	NumLinks           int        `json:"num_links"`
	Chain              []LinkInfo `json:"chain"`
}

// Info describes the disk (VixDiskLib_GetInfo).
func (d *Disk) Info() Info {
	top := d.links[0].desc
	meta := d.Metadata()
	inf := Info{
		Path:               d.path,
		Format:             d.links[0].format(),
		Capacity:           d.size,
		Sectors:            d.size / SectorSize,
		CreateType:         top.CreateType,
		DiskType:           diskType(top.CreateType, meta),
		Kind:               "hosted",
		AdapterType:        meta["adapterType"],
		Geometry:           geometry(meta, "geometry.cylinders", "geometry.heads", "geometry.sectors"),
		BIOSGeometry:       geometry(meta, "geometry.biosCylinders", "geometry.biosHeads", "geometry.biosSectors"),
		UUID:               meta["uuid"],
		CID:                fmt.Sprintf("%08x", top.CID),
		ParentCID:          fmt.Sprintf("%08x", top.ParentCID),
		ParentFileNameHint: top.ParentFileNameHint,
		NumLinks:           len(d.links),
	}
	if d.links[0].managed {
		inf.Kind = "managed"
	}
	inf.HWVersion, _ = strconv.Atoi(meta["virtualHWVersion"])
	for _, l := range d.links {
		li := LinkInfo{
			Path:               l.path,
			Format:             l.format(),
			CreateType:         l.desc.CreateType,
			CID:                fmt.Sprintf("%08x", l.desc.CID),
			ParentCID:          fmt.Sprintf("%08x", l.desc.ParentCID),
			ParentFileNameHint: l.desc.ParentFileNameHint,
			Capacity:           l.size,
		}
		for _, e := range l.exts {
			li.Extents = append(li.Extents, e.info())
		}
		inf.Chain = append(inf.Chain, li)
	}
	return inf
}

func geometry(meta map[string]string, c, h, s string) *Geometry {
	if meta[c] == "" {
		return nil
	}
	atoi := func(k string) uint32 { v, _ := strconv.ParseUint(meta[k], 10, 32); return uint32(v) }
	return &Geometry{atoi(c), atoi(h), atoi(s)}
}

// VixDiskLib disk type values (VixDiskLibDiskType).
const (
	DiskMonolithicSparse = 1
	DiskMonolithicFlat   = 2
	DiskSplitSparse      = 3
	DiskSplitFlat        = 4
	DiskVMFSFlat         = 5
	DiskStreamOptimized  = 6
	DiskVMFSThin         = 7
	DiskVMFSSparse       = 8
	DiskUnknown          = 256
)

func diskType(createType string, meta map[string]string) int {
	switch strings.ToLower(createType) {
	case "monolithicsparse":
		return DiskMonolithicSparse
	case "monolithicflat":
		return DiskMonolithicFlat
	case "twogbmaxextentsparse", "2gbmaxextentsparse":
		return DiskSplitSparse
	case "twogbmaxextentflat", "2gbmaxextentflat":
		return DiskSplitFlat
	case "vmfs", "vmfspreallocated", "vmfseagerzeroedthick", "vmfsthick":
		if meta["thinProvisioned"] == "1" {
			return DiskVMFSThin
		}
		return DiskVMFSFlat
	case "vmfsthin":
		return DiskVMFSThin
	case "streamoptimized":
		return DiskStreamOptimized
	case "vmfssparse", "sesparse", "vmfssesparse":
		return DiskVMFSSparse
	}
	return DiskUnknown
}

// Metadata returns the disk database (VixDiskLib_ReadMetadata): keys without the "ddb." prefix, looked up
// from the top link down the chain as the spec says (children often carry only a few keys).
func (d *Disk) Metadata() map[string]string {
	m := map[string]string{}
	for i := len(d.links) - 1; i >= 0; i-- {
		for k, v := range d.links[i].desc.DDB {
			m[k] = v
		}
	}
	return m
}

// MetadataKeys lists the metadata keys, sorted (VixDiskLib_GetMetadataKeys).
func (d *Disk) MetadataKeys() []string {
	keys := make([]string, 0)
	for k := range d.Metadata() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Descriptor returns the parsed descriptor of link i (0 = the opened disk).
func (d *Disk) Descriptor(i int) (*Descriptor, error) {
	if i < 0 || i >= len(d.links) {
		return nil, errors.New("no such link")
	}
	return d.links[i].desc, nil
}
