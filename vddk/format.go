package vddk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
	"github.com/vmdkmount/vmdkmount/vddk/layer"
	"github.com/vmdkmount/vmdkmount/vddk/qcow2"
	"github.com/vmdkmount/vmdkmount/vddk/vdi"
	"github.com/vmdkmount/vmdkmount/vddk/vhd"
	"github.com/vmdkmount/vmdkmount/vddk/vhdx"
)

// The other virtual disk formats users bring: qcow2, VHD, VHDX and VDI are read by the packages under
// vddk/ and served as one-extent links, so chains, Info, AllocatedBlocks, CopyRaw and Clone treat them
// like any VMDK. A link of another format may have a parent of any format. Known containers we do not
// read are refused by name.

// Format names of DetectFormat.
const (
	FormatVMDK  = "vmdk"
	FormatQcow2 = "qcow2"
	FormatVHD   = "vhd"
	FormatVHDX  = "vhdx"
	FormatVDI   = "vdi"
	FormatRaw   = "raw"
)

// refusedMagic are containers recognised by their first bytes that vmdkmount does not read.
var refusedMagic = []struct{ magic, name string }{
	{"EVF\x09\x0d\x0a\xff\x00", "an EWF (E01) image"},
	{"LVF\x09\x0d\x0a\xff\x00", "an EWF logical evidence (L01) file"},
	{"EVF2\x0d\x0a\x81\x00", "an EWF2 (Ex01) image"},
	{"QED\x00", "a QED image"},
	{"WithoutFreeSpace", "a Parallels image"},
	{"WithouFreSpacExt", "a Parallels image"},
	{"CISO", "a compressed ISO (CSO) image"},
	{"\x78\x01\x73\x0d\x62\x62\x60", "an Apple DMG image"},
	{"Bochs Virtual HD Image", "a Bochs image"},
}

// foreignKind names the foreign format of a file from its first bytes and its last sector: "" for a
// VMDK or raw file, or an error naming a known container vmdkmount does not read.
func foreignKind(f io.ReaderAt, head []byte, size int64) (string, error) {
	switch {
	case qcow2.IsQcow2(head) && len(head) >= 8 && binary.BigEndian.Uint32(head[4:]) == 1:
		return "", layer.Unsupported("a qcow (version 1) image, which vmdkmount does not read")
	case qcow2.IsQcow2(head):
		return FormatQcow2, nil
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return FormatVHDX, nil
	case bytes.HasPrefix(head, []byte("conectix")):
		return FormatVHD, nil
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == vdi.Signature:
		return FormatVDI, nil
	}
	for _, m := range refusedMagic {
		if m.name != "" && bytes.HasPrefix(head, []byte(m.magic)) {
			return "", layer.Unsupported("%s, which vmdkmount does not read", m.name)
		}
	}
	if size >= 1024 {
		var tail [512]byte
		if _, err := f.ReadAt(tail[:], size-512); err == nil {
			switch {
			case bytes.HasPrefix(tail[:], []byte("conectix")):
				return FormatVHD, nil
			case bytes.HasPrefix(tail[:], []byte("koly")):
				return "", layer.Unsupported("an Apple DMG (UDIF) image, which vmdkmount does not read")
			}
		}
	}
	return "", nil
}

// DetectFormat names the format of the disk image at path by its content, never its name: one of the
// Format constants. Known containers vmdkmount does not read, and files that cannot be a disk (empty,
// text that is no descriptor), are refused with an error saying why.
func DetectFormat(path string) (string, error) {
	f, err := confine.OpenPath(path, os.O_RDONLY, true)
	if err != nil {
		return "", wrapErr(ErrFileNotFound, path, err, "open")
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", wrapErr(ErrFileError, path, err, "size")
	}
	head := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return "", wrapErr(ErrFileError, path, err, "read")
	}
	kind, err := foreignKind(f, head, size)
	if err != nil {
		return "", refusal(path, err)
	}
	if kind != "" {
		return kind, nil
	}
	isVMDK, err := isVMDKFile(f)
	if err != nil {
		return "", wrapErr(ErrFileError, path, err, "read")
	}
	if isVMDK {
		return FormatVMDK, nil
	}
	if size == 0 {
		return "", newErr(ErrIncorrectFileType, path, "an empty file, not a disk image")
	}
	if isText(head) {
		return "", newErr(ErrIncorrectFileType, path, "a text file, neither a disk image nor a VMDK descriptor")
	}
	return FormatRaw, nil
}

// IsDiskImage tells whether Open reads path (a VMDK or another virtual disk format, or a network
// disk's URI, which opens as a raw link) rather than it being a raw image; known containers it does
// not read and implausible files are errors.
func IsDiskImage(path string) (bool, error) {
	if IsRemote(path) {
		return true, nil
	}
	kind, err := DetectFormat(path)
	return kind != FormatRaw && err == nil, err
}

// isText: printable bytes and line ends only, no NUL. A raw disk starts with a boot sector, zeros or a
// filesystem superblock, never a page of text.
func isText(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// foreignExtent serves a layer of another format as the only extent of its link.
type foreignExtent struct {
	img   layer.Image
	files []*os.File // the image file first, then any data file
	size  int64      // of the image file
	desc  layer.Description
	inf   ExtentInfo
}

func (e *foreignExtent) readAt(p []byte, off int64, parent parentReader) error {
	if err := e.img.ReadAt(p, off, layer.ReadFunc(parent)); err != nil {
		var ve *Error
		if errors.As(err, &ve) {
			return err // the parent's own error
		}
		return foreignErr(e.inf.Path, err, "read")
	}
	return nil
}

func (e *foreignExtent) alloc(off, n int64, emit func(off, n int64, st allocState)) error {
	err := e.img.Alloc(off, n, func(o, c int64, st layer.State) {
		switch st {
		case layer.Data:
			emit(o, c, allocData)
		case layer.Zero:
			emit(o, c, allocZero)
		default:
			emit(o, c, allocNone)
		}
	})
	if err != nil {
		return foreignErr(e.inf.Path, err, "allocation map")
	}
	return nil
}

// span maps a range of the layer to its own file (see link.span).
func (e *foreignExtent) span(off, n int64) (f *os.File, fileOff int64, fallThrough, ok bool) {
	sp, can := e.img.(layer.Spanner)
	if !can {
		return nil, 0, false, false
	}
	st, host, one := sp.Span(off, n)
	switch {
	case !one:
		return nil, 0, false, false
	case st == layer.None:
		return nil, 0, true, false
	case st == layer.Data && host >= 0 && host <= e.size-n: // not the zeros past a short last cluster
		return e.files[0], host, false, true
	}
	return nil, 0, false, false
}

func (e *foreignExtent) info() ExtentInfo { return e.inf }

func (e *foreignExtent) close() error {
	first := e.img.Close()
	for _, f := range e.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// check walks every table entry of a layer of another format (its allocation map of the whole disk),
// which finds entries pointing outside the file, into its metadata, or at nothing valid.
func (e *foreignExtent) check(size int64) []Problem {
	if err := e.img.Alloc(0, size, func(int64, int64, layer.State) {}); err != nil {
		return []Problem{{File: e.inf.Path, What: err.Error()}}
	}
	return nil
}

// refusal names a container vmdkmount does not read: "disk.E01: an EWF (E01) image, which ...".
func refusal(path string, err error) error {
	return &Error{Code: ErrDiskNotSupported, Path: path, Msg: err.Error()}
}

// foreignErr gives a reader's error its VixDiskLib code: unsupported content, or damage.
func foreignErr(path string, err error, what string) error {
	if errors.Is(err, layer.ErrUnsupported) {
		return wrapErr(ErrDiskNotSupported, path, err, "%s", what)
	}
	return wrapErr(ErrDiskInvalidDisk, path, err, "%s", what)
}

// openForeign opens op's file (of size bytes) as a link of format kind.
func (o *opener) openForeign(op opened, kind string, size int64) (*link, error) {
	f, path := op.f, op.path
	if o.writable {
		return nil, newErr(ErrNotSupported, path, "%s images are read-only here: write to a VMDK child or convert it", kind)
	}
	e := &foreignExtent{files: []*os.File{f}, size: size}
	var img layer.Image
	var err error
	switch kind {
	case FormatQcow2:
		img, err = qcow2.Open(f, size, qcow2.Options{OpenDataFile: func(name string) (io.ReaderAt, int64, error) {
			// Confined beneath the image's folder like an extent.
			if op.dir == nil {
				return nil, 0, newErr(ErrFileAccessError, path, "no folder to find data file %q in", name)
			}
			df, err := o.openNamed(op.dir, name, "data file", false)
			if err != nil {
				return nil, 0, err
			}
			e.files = append(e.files, df.f)
			n, err := df.f.Seek(0, io.SeekEnd)
			return df.f, n, err
		}})
	default:
		err = openOtherFormat(kind, f, size, &img)
	}
	if err != nil {
		for _, df := range e.files[1:] {
			df.Close()
		}
		return nil, foreignErr(path, err, "open "+kind+" image")
	}
	e.img, e.desc = img, img.Describe()
	sectors := (img.Size() + SectorSize - 1) / SectorSize
	name := filepath.Base(path)
	e.inf = ExtentInfo{ExtentLine: ExtentLine{Access: "RDONLY", Sectors: sectors, Type: strings.ToUpper(kind), Filename: name},
		Path: path, Format: kind + " " + e.desc.Variant, GrainSectors: e.desc.BlockSize / SectorSize, Compressed: e.desc.Compressed}
	desc := synthDescriptor(kind, strings.ToUpper(kind), sectors, name)
	desc.ParentFileNameHint = e.desc.Parent.Name
	if e.desc.ID != "" {
		desc.DDB["uuid"] = e.desc.ID
	}
	return &link{path: path, root: op.dir, name: op.rel, desc: desc, exts: []extent{e}, starts: []int64{0}, size: img.Size(), foreign: e}, nil
}

// openOtherFormat opens the formats whose readers need only the file.
func openOtherFormat(kind string, f *os.File, size int64, img *layer.Image) (err error) {
	switch kind {
	case FormatVHD:
		*img, err = vhd.Open(f, size, f.Name())
	case FormatVHDX:
		*img, err = vhdx.Open(f, size)
	case FormatVDI:
		*img, err = vdi.Open(f, size)
	default:
		err = layer.Unsupported("%s images", kind)
	}
	return err
}

// format names the link's container format.
func (l *link) format() string {
	switch {
	case l.foreign != nil:
		return l.foreign.desc.Format
	case l.desc.CreateType == "raw":
		return FormatRaw
	}
	return FormatVMDK
}

// hasParent tells whether a link names a parent to open.
func (l *link) hasParent() bool {
	return l.desc.ParentFileNameHint != "" || l.foreign != nil && l.foreign.desc.Parent.ByID
}

// openForeignParent opens the parent a link of another format names, under the rule of VMDK parents
// (beside the child, or anywhere when the file found is itself a disk image): by its declared format
// (a parent declared raw is opened raw even if it looks like something else, and stays confined), by
// its content otherwise; then checks the identity the child expects.
func (o *opener) openForeignParent(child *link) (*link, error) {
	par := child.foreign.desc.Parent
	fail := func(err error) error {
		return &Error{Code: ErrDiskOpenParent, Path: child.path, Msg: fmt.Sprintf("cannot open parent %q", par.Name), Err: err}
	}
	if child.root == nil {
		return nil, fail(newErr(ErrFileAccessError, child.path, "no folder to find the parent in"))
	}
	names := append([]string{par.Name}, par.Names...)
	if par.ByID {
		name, err := o.findByID(child.root, par.ID)
		if err != nil {
			return nil, fail(err)
		}
		names = []string{name}
	}
	var p *link
	var err, refused error
	for _, name := range names {
		if name == "" {
			continue
		}
		if par.Format == FormatRaw {
			var op opened
			if op, err = o.openNamed(child.root, name, "parent", false); err == nil {
				p, err = o.openRawLink(op)
			}
		} else {
			for _, c := range candidates(child.root.Path, name) {
				p, err = o.openParentAt(child.root, c)
				if !errors.Is(err, fs.ErrNotExist) {
					break
				}
			}
		}
		var verr *Error
		if err == nil || errors.As(err, &verr) && CodeOf(err) != ErrFileNotFound {
			break // found, or found and damaged or looping: say so
		}
		if refused == nil && !errors.Is(err, fs.ErrNotExist) && CodeOf(err) != ErrFileNotFound {
			refused = err
		}
	}
	if err != nil {
		if refused != nil {
			err = refused
		}
		if !errors.As(err, new(*Error)) {
			err = &Error{Code: ErrFileAccessError, Msg: "refused" + externalHint(err), Err: err}
		}
		return nil, fail(err)
	}
	if p == nil {
		return nil, fail(newErr(ErrFileNotFound, child.path, "the parent has no name"))
	}
	if par.ID != "" {
		got := ""
		if p.foreign != nil {
			got = p.foreign.desc.ID
		}
		if !strings.EqualFold(got, par.ID) && !o.opts.IgnoreCIDMismatch {
			p.close()
			return nil, newErr(ErrDiskCIDMismatch, child.path, "expects its parent %s to have id %s, it has %q (the parent changed or is another disk)", p.path, par.ID, got)
		}
	}
	return p, nil
}

// openRawLink opens a raw image as a read-only parent link (its folder stays the child's).
func (o *opener) openRawLink(op opened) (*link, error) {
	if st, err := op.f.Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			id := fileID{uint64(sys.Dev), sys.Ino}
			if prev, dup := o.seen[id]; dup {
				op.f.Close()
				return nil, newErr(ErrDiskInvalidChain, op.path, "the parent chain loops back to %s", prev)
			}
			o.seen[id] = op.path
		}
	}
	return rawLink(op.f, op.path)
}

// isDiskImageFile tells whether an opened file is a VMDK or an image of another format vddk reads:
// what a parent outside its child's folder must be.
func isDiskImageFile(f *os.File) (bool, error) {
	head := make([]byte, 4096)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	size, _ := f.Seek(0, io.SeekEnd)
	if kind, err := foreignKind(f, head[:n], size); err == nil && kind != "" {
		return true, nil
	}
	return isVMDKFile(f)
}

// rawLink makes the one-extent link of a raw image file.
func rawLink(f *os.File, path string) (*link, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, wrapErr(ErrFileError, path, err, "size")
	}
	line := ExtentLine{Access: "RW", Sectors: (size + SectorSize - 1) / SectorSize, Type: "FLAT", Filename: filepath.Base(path), HasOffset: true}
	desc := synthDescriptor("raw", "FLAT", line.Sectors, line.Filename)
	return &link{path: path, desc: desc, size: size, starts: []int64{0},
		exts: []extent{&flatExtent{f: f, size: size, inf: ExtentInfo{ExtentLine: line, Path: path, Format: "flat"}}}}, nil
}

// maxSiblings bounds the folder entries looked at when a parent is known only by its UUID.
const maxSiblings = 4096

// findByID finds, among the VDI files of the child's folder, the one whose creation UUID is id
// (VirtualBox keeps the names in its media registry, not in the child), and returns its name.
func (o *opener) findByID(dir *confine.Dir, id string) (string, error) {
	ents, err := os.ReadDir(dir.Path)
	if err != nil {
		return "", wrapErr(ErrFileAccessError, dir.Path, err, "list")
	}
	for _, e := range ents[:min(len(ents), maxSiblings)] {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := dir.Open(e.Name(), os.O_RDONLY, false)
		if err != nil {
			continue
		}
		got, err := vdi.ReadID(f)
		f.Close()
		if err == nil && strings.EqualFold(got, id) {
			return e.Name(), nil
		}
	}
	return "", newErr(ErrFileNotFound, dir.Path, "no VDI with UUID %s beside the child", id)
}
