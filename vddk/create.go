package vddk

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Disk types that Create makes (the createType written in the descriptor).
const (
	TypeMonolithicSparse     = "monolithicSparse"
	TypeMonolithicFlat       = "monolithicFlat"
	TypeTwoGbMaxExtentSparse = "twoGbMaxExtentSparse"
	TypeTwoGbMaxExtentFlat   = "twoGbMaxExtentFlat"
	TypeStreamOptimized      = "streamOptimized"
	TypeVMFS                 = "vmfs"
	TypeVMFSThin             = "vmfsThin" // written as createType "vmfs" with ddb.thinProvisioned = "1", as ESXi does
)

// CreateTypes lists the types Create accepts.
var CreateTypes = []string{TypeMonolithicSparse, TypeMonolithicFlat, TypeTwoGbMaxExtentSparse, TypeTwoGbMaxExtentFlat, TypeStreamOptimized, TypeVMFS, TypeVMFSThin}

// Adapters lists the adapter types accepted in CreateParams.
var Adapters = []string{"ide", "buslogic", "lsilogic", "lsisas1068", "pvscsi", "legacyESX"}

// SplitSectors is where VMware (and VirtualBox) cut split extents: 2047 MiB.
const SplitSectors = 4192256

// CreateParams describes a new disk (VixDiskLibCreateParams).
type CreateParams struct {
	Type      string // one of CreateTypes
	Capacity  int64  // bytes; rounded up to a whole sector
	Adapter   string // one of Adapters; default "ide"
	HWVersion int    // ddb.virtualHWVersion; default 4
}

// Create makes a new, empty disk at path (VixDiskLib_Create). The descriptor and every extent file are
// created; none may exist already.
func Create(path string, p CreateParams) error {
	return create(path, p, nil, "")
}

// createdLink holds what a new link's descriptor says.
type createdLink struct {
	cid, parentCID uint32
	hint           string
	parentMeta     map[string]string
}

func create(path string, p CreateParams, parent *createdLink, _ string) error {
	if p.Adapter == "" {
		p.Adapter = "ide"
	}
	if p.HWVersion == 0 {
		p.HWVersion = 4
	}
	if !contains(Adapters, p.Adapter) {
		return newErr(ErrInvalidArg, path, "adapter type %q is not one of %s", p.Adapter, strings.Join(Adapters, ", "))
	}
	if !contains(CreateTypes, p.Type) {
		return newErr(ErrInvalidArg, path, "disk type %q is not one of %s", p.Type, strings.Join(CreateTypes, ", "))
	}
	sectors, err := capacitySectors(path, p)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	dir := filepath.Dir(path)
	var files []extentFile
	var extType string
	switch p.Type {
	case TypeMonolithicSparse, TypeStreamOptimized:
		files = []extentFile{{filepath.Base(path), sectors}}
		extType = "SPARSE"
	case TypeMonolithicFlat:
		files = []extentFile{{base + "-flat.vmdk", sectors}}
		extType = "FLAT"
	case TypeVMFS, TypeVMFSThin:
		files = []extentFile{{base + "-flat.vmdk", sectors}}
		extType = "VMFS"
	case TypeTwoGbMaxExtentSparse, TypeTwoGbMaxExtentFlat:
		letter := map[bool]string{true: "s", false: "f"}[p.Type == TypeTwoGbMaxExtentSparse]
		extType = map[bool]string{true: "SPARSE", false: "FLAT"}[p.Type == TypeTwoGbMaxExtentSparse]
		for i, left := 1, sectors; left > 0; i++ {
			n := min(left, SplitSectors)
			files = append(files, extentFile{fmt.Sprintf("%s-%s%03d.vmdk", base, letter, i), n})
			left -= n
		}
	}
	if len(files) > maxExtents {
		return newErr(ErrInvalidArg, path, "capacity needs %d extents, more than %d", len(files), maxExtents)
	}
	// Nothing may be overwritten.
	for _, f := range append([]extentFile{{filepath.Base(path), 0}}, files...) {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
			return newErr(ErrFileAlreadyExists, filepath.Join(dir, f.name), "file already exists")
		} else if !errors.Is(err, fs.ErrNotExist) {
			return wrapErr(ErrFileAccessError, filepath.Join(dir, f.name), err, "stat")
		}
	}
	link := parent
	if link == nil {
		link = &createdLink{parentCID: CIDNone}
	}
	link.cid = newCID()
	desc := descriptorText(p, sectors, link, extType, files)

	var created []string
	fail := func(err error) error {
		for _, c := range created {
			os.Remove(c)
		}
		return err
	}
	for _, f := range files {
		fp := filepath.Join(dir, f.name)
		var err error
		switch {
		case p.Type == TypeStreamOptimized:
			err = writeEmptyStream(fp, f.sectors, desc)
		case extType == "SPARSE" && p.Type == TypeMonolithicSparse:
			err = writeSparseExtent(fp, f.sectors, desc)
		case extType == "SPARSE":
			err = writeSparseExtent(fp, f.sectors, "")
		default:
			err = writeFlatExtent(fp, f.sectors)
		}
		if err != nil {
			return fail(wrapErr(ErrFileError, fp, err, "create extent"))
		}
		created = append(created, fp)
	}
	if p.Type != TypeMonolithicSparse && p.Type != TypeStreamOptimized {
		// O_EXCL: a symlink planted after the check above is never followed (nor anything replaced).
		if err := writeNew(path, []byte(desc), 0); err != nil {
			return fail(wrapErr(ErrFileError, path, err, "write descriptor"))
		}
	}
	return nil
}

// capacitySectors is p's capacity in sectors, when a disk of p's type can hold it.
func capacitySectors(path string, p CreateParams) (int64, error) {
	sectors := (p.Capacity + SectorSize - 1) / SectorSize
	if sectors <= 0 || sectors > maxCapacitySectors {
		return 0, newErr(ErrInvalidArg, path, "capacity %d bytes is out of range", p.Capacity)
	}
	if p.Type != TypeStreamOptimized && isSparseType(p.Type) && sectors >= 1<<32 {
		return 0, newErr(ErrInvalidArg, path, "a hosted sparse disk holds less than 2 TiB (its tables use 32-bit sector numbers)")
	}
	return sectors, nil
}

// extentFile is one extent file of a new disk.
type extentFile struct {
	name    string
	sectors int64
}

// descriptorText renders a new link's descriptor.
func descriptorText(p CreateParams, sectors int64, link *createdLink, extType string, files []extentFile) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%08x\nparentCID=%08x\n", link.cid, link.parentCID)
	createType := p.Type
	if p.Type == TypeVMFSThin {
		createType = TypeVMFS
	}
	fmt.Fprintf(&sb, "createType=%q\n", createType)
	if link.hint != "" {
		fmt.Fprintf(&sb, "parentFileNameHint=%q\n", link.hint)
	}
	sb.WriteString("\n# Extent description\n")
	for _, f := range files {
		if extType == "FLAT" {
			fmt.Fprintf(&sb, "RW %d %s %q 0\n", f.sectors, extType, f.name)
		} else {
			fmt.Fprintf(&sb, "RW %d %s %q\n", f.sectors, extType, f.name)
		}
	}
	sb.WriteString("\n# The Disk Data Base\n#DDB\n\n")
	for _, kv := range ddbFor(p, sectors, link) {
		fmt.Fprintf(&sb, "ddb.%s = %q\n", kv[0], kv[1])
	}
	return sb.String()
}

func isSparseType(t string) bool {
	return t == TypeMonolithicSparse || t == TypeTwoGbMaxExtentSparse || t == TypeStreamOptimized
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ddbFor returns the disk database of a new link, in the order VMware writes it.
func ddbFor(p CreateParams, sectors int64, link *createdLink) [][2]string {
	if link.parentMeta != nil {
		// Children carry few keys; readers walk up the chain for the rest.
		kv := [][2]string{{"longContentID", longContentID(link.cid)}}
		if a := link.parentMeta["adapterType"]; a != "" {
			kv = append([][2]string{{"adapterType", a}}, kv...)
		}
		return kv
	}
	heads, secs, maxCyl := int64(16), int64(63), int64(16383)
	if p.Adapter != "ide" {
		heads, maxCyl = 255, 65535
	}
	cyl := min(max(1, (sectors+heads*secs-1)/(heads*secs)), maxCyl)
	kv := [][2]string{
		{"adapterType", p.Adapter},
		{"geometry.cylinders", fmt.Sprint(cyl)},
		{"geometry.heads", fmt.Sprint(heads)},
		{"geometry.sectors", fmt.Sprint(secs)},
		{"longContentID", longContentID(link.cid)},
		{"uuid", newUUID()},
		{"virtualHWVersion", fmt.Sprint(p.HWVersion)},
	}
	if p.Type == TypeVMFSThin {
		kv = append(kv, [2]string{"thinProvisioned", "1"})
	}
	return kv
}

// newCID returns a random content ID, never one of the two values with a meaning.
func newCID() uint32 {
	for {
		var b [4]byte
		rand.Read(b[:])
		if c := binary.LittleEndian.Uint32(b[:]); c != CIDNone && c != CIDFresh {
			return c
		}
	}
}

func longContentID(cid uint32) string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + fmt.Sprintf("%08x", cid)
}

// newUUID returns a ddb.uuid in VMware's "60 00 C2 9x …" form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[0], b[1], b[2], b[3] = 0x60, 0x00, 0xc2, 0x90|b[3]&0x0f
	parts := make([]string, 16)
	for i, v := range b {
		parts[i] = fmt.Sprintf("%02x", v)
	}
	return strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
}

// sparseLayout computes where a new hosted sparse extent keeps its tables (VMware's and qemu's layout:
// header, descriptor, redundant directory and tables, directory and tables, then grains).
type sparseLayout struct {
	descOffset, descSize   uint64
	rgd, gd, overhead      uint64
	numGTs, gdSectors      uint64
	grainSize, gtesPerGT   uint64
	capacity               uint64
	firstRGT, firstGT      uint64
	gtSectorsPerTable      uint64
	withEmbeddedDescriptor bool
}

func newSparseLayout(sectors int64, embedded bool) sparseLayout {
	l := sparseLayout{grainSize: 128, gtesPerGT: 512, capacity: uint64(sectors), gtSectorsPerTable: 4}
	l.numGTs = (l.capacity + l.grainSize*l.gtesPerGT - 1) / (l.grainSize * l.gtesPerGT)
	l.gdSectors = (l.numGTs*4 + SectorSize - 1) / SectorSize
	next := uint64(1)
	if embedded {
		l.descOffset, l.descSize, l.withEmbeddedDescriptor = 1, 20, true
		next = 21
	}
	l.rgd = next
	l.firstRGT = l.rgd + l.gdSectors
	l.gd = l.firstRGT + l.numGTs*l.gtSectorsPerTable
	l.firstGT = l.gd + l.gdSectors
	end := l.firstGT + l.numGTs*l.gtSectorsPerTable
	l.overhead = (end + l.grainSize - 1) / l.grainSize * l.grainSize
	return l
}

func (l sparseLayout) header(flags, version uint32, gd uint64) []byte {
	h := make([]byte, SectorSize)
	le := binary.LittleEndian
	le.PutUint32(h[0:], sparseMagic)
	le.PutUint32(h[4:], version)
	le.PutUint32(h[8:], flags)
	le.PutUint64(h[12:], l.capacity)
	le.PutUint64(h[20:], l.grainSize)
	le.PutUint64(h[28:], l.descOffset)
	le.PutUint64(h[36:], l.descSize)
	le.PutUint32(h[44:], uint32(l.gtesPerGT))
	if flags&flagRedundantGD != 0 {
		le.PutUint64(h[48:], l.rgd)
	}
	le.PutUint64(h[56:], gd)
	le.PutUint64(h[64:], l.overhead)
	copy(h[73:], "\n \r\n")
	if flags&flagCompressed != 0 {
		le.PutUint16(h[77:], 1)
	}
	return h
}

// writeSparseExtent creates a hosted sparse extent with every grain table preallocated (VMware needs
// them), an empty redundant copy, and, for monolithic disks, the embedded descriptor.
func writeSparseExtent(path string, sectors int64, desc string) error {
	img, err := sparseExtentImage(sectors, desc)
	if err != nil {
		return err
	}
	return writeNew(path, img, 0)
}

// sparseExtentImage is the start of a new hosted sparse extent, up to its first grain: header,
// descriptor, grain directories and empty tables.
func sparseExtentImage(sectors int64, desc string) ([]byte, error) {
	l := newSparseLayout(sectors, desc != "")
	if desc != "" && len(desc) > int(l.descSize)*SectorSize {
		return nil, fmt.Errorf("descriptor is %d bytes, more than its %d-sector room", len(desc), l.descSize)
	}
	img := make([]byte, l.overhead*SectorSize)
	copy(img, l.header(flagNewlineCheck|flagRedundantGD, 1, l.gd))
	copy(img[l.descOffset*SectorSize:], desc)
	for i := range l.numGTs {
		binary.LittleEndian.PutUint32(img[l.rgd*SectorSize+4*i:], uint32(l.firstRGT+i*l.gtSectorsPerTable))
		binary.LittleEndian.PutUint32(img[l.gd*SectorSize+4*i:], uint32(l.firstGT+i*l.gtSectorsPerTable))
	}
	return img, nil
}

// writeEmptyStream creates a stream-optimized file holding no grain: header with the directory at the
// end, embedded descriptor, an empty directory, footer and end-of-stream marker (the spec's layout).
func writeEmptyStream(path string, sectors int64, desc string) error {
	l := newSparseLayout(sectors, true)
	l.overhead = 128
	flags := uint32(flagNewlineCheck | flagCompressed | flagMarkers)
	img := make([]byte, l.overhead*SectorSize)
	copy(img, l.header(flags, 3, gdAtEnd))
	copy(img[SectorSize:], desc)
	marker := func(n uint64, typ uint32) []byte {
		m := make([]byte, SectorSize)
		binary.LittleEndian.PutUint64(m, n)
		binary.LittleEndian.PutUint32(m[12:], typ)
		return m
	}
	img = append(img, marker(l.gdSectors, markerGD)...)
	gd := uint64(len(img) / SectorSize)
	img = append(img, make([]byte, l.gdSectors*SectorSize)...)
	img = append(img, marker(1, markerFooter)...)
	img = append(img, l.header(flags, 3, gd)...)
	img = append(img, marker(0, markerEOS)...)
	return writeNew(path, img, 0)
}

// writeFlatExtent creates a flat extent as a sparse file of the full size.
func writeFlatExtent(path string, sectors int64) error {
	return writeNew(path, nil, sectors*SectorSize)
}

func writeNew(path string, data []byte, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if size > int64(len(data)) {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
