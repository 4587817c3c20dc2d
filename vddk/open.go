package vddk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
)

// Options are VixDiskLib_Open's flags, in Go form. The zero value opens the whole chain read-only.
type Options struct {
	// Writable opens the named link for writing (the parents stay read-only): WriteAt allocates grains,
	// copying the rest of each grain from the parents. A second writer is refused while it is open.
	Writable bool
	// SingleLink opens only the named link (VIXDISKLIB_FLAG_OPEN_SINGLE_LINK): ranges it does not hold
	// read as zeros instead of coming from the parents.
	SingleLink bool
	// Unbuffered (VIXDISKLIB_FLAG_OPEN_UNBUFFERED) turns off the cache of inflated stream grains.
	Unbuffered bool
	// IgnoreCIDMismatch opens a chain even when a child's parentCID differs from its parent's CID.
	IgnoreCIDMismatch bool
	// AllowExternalPaths lets extents and parents live outside the folder of the link naming them
	// (absolute paths, "../", symlinks leaving the folder, block devices). Off by default: a descriptor
	// must not be able to make us read /etc/shadow or a host block device. Without it a parent may still
	// lie in another folder when it is itself a VMDK (linked clones); its own extents stay in its folder.
	AllowExternalPaths bool
	// RemoteParent is the URI of a network disk (see RegisterRemote) a link may name as its parent: the
	// base of a redo log made over that disk. Any other URI a descriptor names as parent is refused.
	RemoteParent string
}

// MaxChainLength bounds the links of a chain (VixDiskLib: too many redo logs past 255).
const MaxChainLength = 255

type fileID struct{ dev, ino uint64 }

type opener struct {
	opts     Options
	seen     map[fileID]string
	writable bool     // the link being opened is the one written to
	touched  []string // files read without O_NOATIME (the kernel refused it: we do not own them)
	tables   *diskTables
}

// openFlag is the open(2) access mode for a file read, or written when writable.
func openFlag(writable bool) int {
	if writable {
		return os.O_RDWR
	}
	return os.O_RDONLY
}

// opened is one file found for a descriptor line: the file, its folder and its path beneath it.
type opened struct {
	f    *os.File
	dir  *confine.Dir // the folder it was opened beneath (nil: opened by path, with the external option)
	rel  string       // its path beneath dir
	path string       // for messages and Info
}

// note remembers a file whose access time reading changes.
func (o *opener) note(f *os.File) {
	if !confine.KeepsATime(f) && !slices.Contains(o.touched, f.Name()) {
		o.touched = append(o.touched, f.Name())
	}
}

// candidates lists where a descriptor's name may be: as written (relative to the folder, or absolute),
// then (for absolute or Windows paths that do not exist or may not be used) its base name in the folder.
func candidates(dir, name string) []string {
	var cands []string
	slashed := strings.ReplaceAll(name, `\`, "/")
	windowsAbs := len(slashed) > 2 && slashed[1] == ':' && slashed[2] == '/' || strings.HasPrefix(slashed, "//")
	switch {
	case windowsAbs:
	case filepath.IsAbs(name):
		cands = append(cands, name)
	default:
		cands = append(cands, filepath.Join(dir, name))
		if slashed != name {
			cands = append(cands, filepath.Join(dir, filepath.FromSlash(slashed)))
		}
	}
	base := slashed[strings.LastIndexByte(slashed, '/')+1:]
	if base != "" && base != "." && base != ".." {
		cands = append(cands, filepath.Join(dir, base))
	}
	return cands
}

// openNamed opens the file a descriptor line names, confined beneath dir (the folder of the link naming
// it) unless the external option is on. It is opened in one step: no symlink swapped in after a check
// can lead elsewhere, and a FIFO or device is refused without blocking.
func (o *opener) openNamed(dir *confine.Dir, name, what string, writable bool) (opened, error) {
	cands := candidates(dir.Path, name)
	var refused error
	for _, c := range cands {
		var f *os.File
		var err error
		rel, relErr := dir.Rel(c)
		switch {
		case o.opts.AllowExternalPaths:
			f, err = confine.OpenPath(c, openFlag(writable), true)
		case relErr != nil:
			if _, serr := os.Lstat(c); serr != nil {
				continue // not there: no need to say it would leave the folder
			}
			err = relErr
		default:
			f, err = dir.Open(rel, openFlag(writable), false)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		o.note(f)
		if relErr != nil {
			return opened{f: f, path: c}, nil
		}
		return opened{f: f, dir: dir, rel: rel, path: c}, nil
	}
	if refused != nil {
		return opened{}, &Error{Code: ErrFileAccessError, Msg: fmt.Sprintf("%s %q refused%s", what, name, externalHint(refused)), Err: refused}
	}
	shown := name
	if len(cands) > 0 {
		shown = cands[0]
	}
	return opened{}, newErr(ErrFileNotFound, shown, "%s %q not found", what, name)
}

// externalHint names the option that would allow a refused path.
func externalHint(err error) string {
	if errors.Is(err, confine.ErrOutside) {
		return " (allow with --allow-external-extents)"
	}
	return ""
}

// link is one descriptor and its extents: one level of a chain.
type link struct {
	path    string
	desc    *Descriptor
	exts    []extent
	starts  []int64 // byte offset of each extent in the link
	size    int64
	managed bool
	// The folder the link's own extents are confined to, the link's file beneath it (name) and each
	// extent's (rels, "" for none or one opened by path): removal and renaming go through them.
	root *confine.Dir
	name string
	rels []string
	// Set on the written link only: the descriptor's file (locked), and where the descriptor text lies
	// in it (descRoom 0: the whole file is the descriptor).
	descFile          *os.File
	descOff, descRoom int64
	textDesc          bool           // the descriptor is a text file of its own
	foreign           *foreignExtent // a link of another format (qcow2, VHD, VHDX, VDI): its only extent
}

func (l *link) close() error {
	var first error
	if l.descFile != nil && (len(l.exts) == 0 || !l.ownsDescFile()) {
		first = l.descFile.Close()
	}
	for _, e := range l.exts {
		if err := e.close(); err != nil && first == nil {
			first = err
		}
	}
	l.root.Close()
	return first
}

// openLink reads one descriptor (text or embedded) or a bare sparse file from op and opens all its
// extents beneath op's folder, which the link then owns (with op's file).
func (o *opener) openLink(op opened) (l *link, err error) {
	f, path := op.f, op.path
	o.note(f)
	keep := false
	defer func() {
		if !keep || l == nil {
			f.Close()
		}
		if l == nil {
			op.dir.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, wrapErr(ErrFileError, path, err, "stat")
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id := fileID{uint64(sys.Dev), sys.Ino}
		if prev, dup := o.seen[id]; dup {
			return nil, newErr(ErrDiskInvalidChain, path, "the parent chain loops back to %s", prev)
		}
		o.seen[id] = path
	}
	if o.writable {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return nil, wrapErr(ErrFileAlreadyLocked, path, err, "the disk is open for writing elsewhere")
		}
	}
	size := st.Size()
	if st.Mode()&fs.ModeDevice != 0 {
		size, err = f.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, wrapErr(ErrFileError, path, err, "size of device")
		}
	}
	hdr := make([]byte, min(size, cowdHeaderSize))
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, wrapErr(ErrFileError, path, err, "read header")
	}
	if kind, err := foreignKind(f, hdr, size); sniff(hdr) == "" && (err != nil || kind != "") {
		if err != nil {
			return nil, refusal(path, err)
		}
		l, err := o.openForeign(op, kind, size)
		keep = err == nil
		return l, err
	}
	l = &link{path: path, root: op.dir, name: op.rel}
	if o.writable {
		l.descFile = f
		keep = true
	}
	self := -1 // index of the extent that is this very file
	var sh *sparseHeader
	switch sniff(hdr) {
	case "KDMV":
		sh, err = parseSparseHeader(hdr)
		if err != nil {
			return nil, wrapErr(ErrDiskInvalidDisk, path, err, "invalid sparse header")
		}
		if code, err := sh.validate(size); err != nil {
			return nil, wrapErr(code, path, err, "invalid sparse header")
		}
		if sh.DescOffset != 0 {
			text := make([]byte, sh.DescSize*SectorSize)
			n, err := f.ReadAt(text, int64(sh.DescOffset)*SectorSize)
			if err != nil && err != io.EOF {
				return nil, wrapErr(ErrFileError, path, err, "read embedded descriptor")
			}
			l.desc, err = ParseDescriptor(text[:n])
			if err != nil {
				return nil, wrapErr(ErrDiskInvalidDisk, path, err, "embedded descriptor")
			}
			l.descOff, l.descRoom = int64(sh.DescOffset)*SectorSize, int64(sh.DescSize)*SectorSize
			if sh.Capacity != 0 {
				self = selfExtent(l.desc, filepath.Base(path))
			}
		} else {
			ct := "monolithicSparse"
			if sh.Flags&flagCompressed != 0 {
				ct = "streamOptimized"
			}
			l.desc = synthDescriptor(ct, "SPARSE", int64(sh.Capacity), filepath.Base(path))
			self = 0
		}
	case "COWD":
		if len(hdr) < cowdHeaderSize {
			return nil, newErr(ErrDiskInvalidDisk, path, "COWD header is truncated (%d bytes)", len(hdr))
		}
		l.desc = synthDescriptor("vmfsSparse", "VMFSSPARSE", int64(uint32le(hdr[12:])), filepath.Base(path))
		self = 0
	case "seSparse":
		if len(hdr) < 24 {
			return nil, newErr(ErrDiskInvalidDisk, path, "seSparse header is truncated")
		}
		l.desc = synthDescriptor("seSparse", "SESPARSE", int64(uint64le(hdr[16:])), filepath.Base(path))
		self = 0
	default:
		if size > MaxDescriptorSize {
			return nil, newErr(ErrDiskInvalidDisk, path, "not a VMDK: no sparse header and too big (%d bytes) for a descriptor", size)
		}
		text := make([]byte, size)
		if _, err := f.ReadAt(text, 0); err != nil && err != io.EOF {
			return nil, wrapErr(ErrFileError, path, err, "read descriptor")
		}
		if !looksLikeText(text) {
			return nil, newErr(ErrDiskInvalidDisk, path, "not a VMDK: no sparse header and not a text descriptor")
		}
		l.desc, err = ParseDescriptor(text)
		if err != nil {
			return nil, wrapErr(ErrDiskInvalidDisk, path, err, "descriptor")
		}
		l.textDesc = true
	}
	l.managed = isManaged(l.desc.CreateType)
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	var off int64
	for i, line := range l.desc.Extents {
		size := line.Sectors * SectorSize
		var e extent
		rel := ""
		if i == self {
			e, err = openExtentFile(f, path, line, size, sh, o.writable, o.tables)
			keep = keep || err == nil
			rel = op.rel
		} else {
			e, rel, err = o.openExtent(op.dir, line, size)
		}
		if err != nil {
			return l, &Error{Code: CodeOf(err), Path: path, Msg: fmt.Sprintf("extent %d", i+1), Err: err}
		}
		if g, ok := e.(*grainExtent); ok && g.inflater != nil && o.opts.Unbuffered {
			g.inflater.cache = nil
		}
		l.exts = append(l.exts, e)
		l.rels = append(l.rels, rel)
		l.starts = append(l.starts, off)
		off += size
	}
	l.size = off
	return l, nil
}

// selfExtent picks the extent of an embedded descriptor that is the file itself: the one naming it, or
// else the first sparse one (the file was renamed after it was made).
func selfExtent(d *Descriptor, base string) int {
	first := -1
	for i, e := range d.Extents {
		if e.Type != "SPARSE" {
			continue
		}
		if filepath.Base(strings.ReplaceAll(e.Filename, `\`, "/")) == base {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return max(first, 0)
}

func synthDescriptor(createType, extType string, sectors int64, name string) *Descriptor {
	return &Descriptor{
		Version:    1,
		CID:        CIDNone,
		ParentCID:  CIDNone,
		CreateType: createType,
		Extents:    []ExtentLine{{Access: "RW", Sectors: sectors, Type: extType, Filename: name}},
		DDB:        map[string]string{},
		Other:      map[string]string{},
	}
}

func (o *opener) openExtent(dir *confine.Dir, line ExtentLine, size int64) (extent, string, error) {
	inf := ExtentInfo{ExtentLine: line, Format: strings.ToLower(line.Type)}
	switch line.Type {
	case "ZERO":
		return &zeroExtent{inf}, "", nil
	case "VMFSRDM", "VMFSRAW":
		return nil, "", newErr(ErrDiskNotSupported, line.Filename, "raw device map extents (%s) are not supported: they point at a host LUN, not at data in a file", line.Type)
	}
	if line.Access == "NOACCESS" {
		return &noAccessExtent{inf}, "", nil
	}
	op, err := o.openNamed(dir, line.Filename, "extent", o.writable && line.Access == "RW")
	if err != nil {
		return nil, "", err
	}
	f, path := op.f, op.path
	var sh *sparseHeader
	if line.Type != "FLAT" && line.Type != "VMFS" {
		hdr := make([]byte, SectorSize)
		if _, err := f.ReadAt(hdr, 0); err == nil && sniff(hdr) == "KDMV" {
			sh, _ = parseSparseHeader(hdr)
		}
	}
	e, err := openExtentFile(f, path, line, size, sh, o.writable, o.tables)
	if err != nil {
		f.Close()
	}
	return e, op.rel, err
}

// openExtentFile builds the extent reader for an open file according to its line and contents. A
// read-only grain-table file that t has already opened for another line is not loaded again.
func openExtentFile(f *os.File, path string, line ExtentLine, size int64, sh *sparseHeader, writable bool, t *diskTables) (extent, error) {
	fileSize, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, wrapErr(ErrFileError, path, err, "size")
	}
	switch line.Type {
	case "FLAT", "VMFS":
		if line.Type == "FLAT" && !line.HasOffset {
			line.Offset = 0
		}
		base := line.Offset * SectorSize
		if base+size > fileSize {
			return nil, newErr(ErrDiskInvalidDisk, path, "flat extent needs %d bytes from byte %d, the file has %d", size, base, fileSize)
		}
		return &flatExtent{f: f, base: base, size: size, inf: ExtentInfo{ExtentLine: line, Path: path, Format: "flat"}}, nil
	case "SPARSE", "VMFSSPARSE", "SESPARSE":
	default:
		return nil, newErr(ErrDiskNotSupported, path, "extent type %s is not supported", line.Type)
	}
	writable = writable && line.Access == "RW"
	prev, id, found := t.shared(f)
	if found && !writable {
		return prev.alias(f, size, line, path), nil
	}
	e, err := openGrainFile(f, path, fileSize, line, size, sh, writable, t)
	if err != nil {
		return nil, err
	}
	if !writable {
		t.remember(id, e)
	}
	return e, nil
}

func openGrainFile(f *os.File, path string, fileSize int64, line ExtentLine, size int64, sh *sparseHeader, writable bool, t *diskTables) (_ *grainExtent, err error) {
	hdr := make([]byte, min(fileSize, cowdHeaderSize))
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, wrapErr(ErrFileError, path, err, "read extent header")
	}
	switch sniff(hdr) {
	case "KDMV":
		if sh == nil {
			if sh, err = parseSparseHeader(hdr); err != nil {
				return nil, wrapErr(ErrDiskInvalidDisk, path, err, "invalid sparse header")
			}
		}
		return openSparseExtent(f, path, fileSize, sh, size, line, writable, t)
	case "COWD":
		return openCOWDExtent(f, path, fileSize, hdr, size, line, t)
	case "seSparse":
		return openSESparseExtent(f, path, fileSize, hdr, size, line, t)
	}
	return nil, newErr(ErrDiskInvalidDisk, path, "%s extent has no KDMV, COWD or seSparse header", line.Type)
}

func isManaged(createType string) bool {
	ct := strings.ToLower(createType)
	return strings.HasPrefix(ct, "vmfs") || ct == "sesparse"
}

// looksLikeText accepts descriptor text: printable bytes and line ends, up to the first NUL if there is
// one. What follows a NUL is not looked at, as qemu (which reads a descriptor as a C string) does not
// either: qemu-img itself sometimes leaves bytes there in a monolithicFlat descriptor it has just made
// (seemingly the end of a longer earlier text, rewritten with a shorter CID).
func looksLikeText(b []byte) bool {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return len(b) > 0
}

func uint32le(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func uint64le(b []byte) uint64 { return uint64(uint32le(b)) | uint64(uint32le(b[4:]))<<32 }

// OpenRaw opens a raw disk image as a one-extent disk, so that it can be cloned into a VMDK or read
// through the same interface. The whole file is the disk.
func OpenRaw(path string, opts Options) (*Disk, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, wrapErr(ErrInvalidArg, path, err, "path")
	}
	f, err := confine.OpenPath(abs, openFlag(opts.Writable), true)
	if err != nil {
		code := ErrFileAccessError
		if errors.Is(err, fs.ErrNotExist) {
			code = ErrFileNotFound
		}
		return nil, wrapErr(code, abs, err, "open raw image")
	}
	l, err := rawLink(f, abs)
	if err != nil {
		return nil, err
	}
	d := &Disk{path: abs, links: []*link{l}, size: l.size, opts: opts}
	if !confine.KeepsATime(f) {
		d.touched = []string{abs}
	}
	return d, nil
}
