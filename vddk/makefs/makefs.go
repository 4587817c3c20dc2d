// Package makefs builds a disk from files, as libguestfs's virt-make-fs does: a FAT32, ISO9660 (Rock
// Ridge and Joliet) or squashfs filesystem made from a folder or a tar archive (FAT32 and squashfs by
// our own writers, ISO9660 by go-diskfs), optionally inside a GPT or MBR partition table (go-diskfs),
// written as a raw image or any VMDK type vddk creates.
package makefs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/vddk/makefs/untar"
)

// Filesystems lists the filesystems Make builds.
var Filesystems = []string{"fat32", "iso9660", "squashfs"}

// Partitionings lists the partition tables Make writes ("none": the filesystem fills the disk).
var Partitionings = []string{"none", "gpt", "mbr"}

// Options says what to build.
type Options struct {
	FS        string // one of Filesystems
	Type      string // a vddk.CreateTypes entry or "raw"; default monolithicSparse
	Partition string // one of Partitionings; default "none"
	// Size is the whole disk's size in bytes; 0 picks the content plus a margin. With Grow, Size is
	// added to that estimate instead (--size +N).
	Size            int64
	Grow            bool
	Label           string
	SkipUnsupported bool          // leave out what the filesystem cannot hold instead of failing
	Progress        vddk.Progress // optional
}

// Skipped is a source entry left out because the filesystem cannot hold it.
type Skipped struct {
	Path   string
	Reason string
}

// Result tells what Make did.
type Result struct {
	DiskSize int64 // virtual size of the disk written
	FSSize   int64 // bytes the filesystem spans
	Skipped  []Skipped
}

// ErrUnsupported is wrapped by the error for an entry the filesystem cannot hold.
var ErrUnsupported = errors.New("the filesystem cannot hold it")

const (
	mib       = 1 << 20
	partStart = mib // first partition at 1 MiB, as parted and sgdisk align it
	gptTail   = mib // room for the backup GPT, kept aligned
)

// Make builds the disk at out from src (a folder or a tar archive, plain or compressed).
func Make(src, out string, o Options) (res *Result, err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	root, own := src, false
	if !fi.IsDir() {
		tmp, err := os.MkdirTemp("", "makefs-tar-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := untar.Extract(src, tmp); err != nil {
			return nil, err
		}
		root, own = tmp, true
	}
	all, err := scan(root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src, err)
	}
	kept, skipped, err := filter(o.FS, all, o.SkipUnsupported)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		slog.Info("make-fs: left out", "path", s.Path, "reason", s.Reason)
	}
	res = &Result{Skipped: skipped}

	rawPath := out
	if o.Type != "raw" {
		f, err := os.CreateTemp(filepath.Dir(out), ".make-fs-*.raw")
		if err != nil {
			return nil, err
		}
		f.Close()
		rawPath = f.Name()
		defer os.Remove(rawPath)
	}
	flags := os.O_RDWR | os.O_TRUNC // the temporary file CreateTemp made
	if o.Type == "raw" {
		flags = os.O_RDWR | os.O_CREATE | os.O_EXCL // never over an existing file
	}
	f, err := os.OpenFile(rawPath, flags, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if o.Type == "raw" {
		defer func() {
			if err != nil {
				os.Remove(out) // ours: created above, never an existing file
			}
		}()
	}

	var content int64
	for _, e := range kept {
		content += e.size
	}
	prog := newProgress(o, content)
	st := &countingStorage{Storage: file.New(f, false), written: prog.add}
	start := int64(0)
	if o.Partition != "none" {
		start = partStart
	}
	// Room the table leaves the filesystem when the caller fixed the disk's size.
	fixed := int64(0)
	if o.Size > 0 && !o.Grow {
		fixed = o.Size - start
		if o.Partition == "gpt" {
			fixed -= gptTail
		}
		if fixed <= 0 {
			return nil, fmt.Errorf("%s: --size %d leaves no room for the filesystem", out, o.Size)
		}
	}
	switch o.FS {
	case "fat32":
		var w backend.WritableFile
		if w, err = st.Writable(); err == nil {
			res.FSSize, err = buildFAT(w, start, fixed, o, root, kept)
		}
	case "iso9660":
		res.FSSize, err = buildISO(st, f, start, o, root, own, kept)
	case "squashfs":
		res.FSSize, err = buildSquashfs(f, start, root, kept, prog.add)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	if fixed > 0 && res.FSSize > fixed {
		return nil, fmt.Errorf("%s: the %s filesystem needs %d bytes, more than --size leaves it (%d)", out, o.FS, res.FSSize, fixed)
	}
	fsSpan := roundUp(max(res.FSSize, fixed), mib)
	if o.Grow {
		fsSpan = roundUp(fsSpan+o.Size, mib)
	}
	disk := start + fsSpan
	if o.Partition == "gpt" {
		disk += gptTail
	}
	if o.Size > 0 && !o.Grow {
		disk = roundUp(o.Size, vddk.SectorSize)
	}
	res.DiskSize = disk
	if err := f.Truncate(disk); err != nil {
		return nil, err
	}
	if err := writeTable(st, o, start, fsSpan, disk); err != nil {
		return nil, fmt.Errorf("%s: partition table: %w", out, err)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if o.Type == "raw" {
		prog.finish()
		return res, f.Close()
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	d, err := vddk.OpenRaw(rawPath, vddk.Options{})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := d.Clone(out, vddk.CreateParams{Type: o.Type, Adapter: "lsilogic"}, prog.clone); err != nil {
		return nil, err
	}
	prog.finish()
	return res, nil
}

func (o *Options) check() error {
	if o.Type == "" {
		o.Type = vddk.TypeMonolithicSparse
	}
	if o.Partition == "" {
		o.Partition = "none"
	}
	if !contains(Filesystems, o.FS) {
		return fmt.Errorf("filesystem %q is not one of %v", o.FS, Filesystems)
	}
	if !contains(Partitionings, o.Partition) {
		return fmt.Errorf("partition table %q is not one of %v", o.Partition, Partitionings)
	}
	if o.Type != "raw" && !contains(vddk.CreateTypes, o.Type) {
		return fmt.Errorf("disk type %q is not raw or one of %v", o.Type, vddk.CreateTypes)
	}
	if o.Size < 0 {
		return fmt.Errorf("size %d is negative", o.Size)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// writeTable writes the partition table (if any) whose one partition spans [start, start+span).
func writeTable(st backend.Storage, o Options, start, span, disk int64) error {
	w, err := st.Writable()
	if err != nil {
		return err
	}
	switch o.Partition {
	case "gpt":
		typ := gpt.LinuxFilesystem
		if o.FS == "fat32" {
			typ = gpt.MicrosoftBasicData
		}
		t := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true,
			Partitions: []*gpt.Partition{{Index: 1, Start: uint64(start / 512), End: uint64((start+span)/512 - 1), Size: uint64(span), Type: typ, Name: o.Label}}}
		return t.Write(w, disk)
	case "mbr":
		typ := mbr.Linux
		if o.FS == "fat32" {
			typ = mbr.Fat32LBA
		}
		if (start+span)/512 > 1<<32-1 {
			return fmt.Errorf("an MBR partition ends before 2 TiB; this one needs %d bytes", start+span)
		}
		t := &mbr.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512,
			Partitions: []*mbr.Partition{{Index: 1, Type: typ, Start: uint32(start / 512), Size: uint32(span / 512)}}}
		return t.Write(w, disk)
	}
	return nil
}

// countingStorage reports every byte a go-diskfs writer writes, for progress.
type countingStorage struct {
	backend.Storage
	written func(n int64)
}

func (s *countingStorage) Writable() (backend.WritableFile, error) {
	w, err := s.Storage.Writable()
	if err != nil {
		return nil, err
	}
	return countingFile{w, s.written}, nil
}

type countingFile struct {
	backend.WritableFile
	written func(n int64)
}

// WriteAt leaves large all-zero writes out: the image is a new file, whose unwritten parts read as
// zeros, so a sparse source file stays a hole instead of taking its size on disk (go-diskfs copies
// file data once and never clears what it wrote before).
func (f countingFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) >= 512 && vddk.IsZero(p) {
		f.written(int64(len(p)))
		return len(p), nil
	}
	n, err := f.WritableFile.WriteAt(p, off)
	f.written(int64(n))
	return n, err
}

// progress maps the two phases (filesystem build, then conversion to VMDK) onto one 0..total scale.
type progress struct {
	cb      vddk.Progress
	build   int64 // bytes the build phase is expected to write
	twoStep bool
	done    atomic.Int64
}

func newProgress(o Options, content int64) *progress {
	return &progress{cb: o.Progress, build: max(content, 1), twoStep: o.Type != "raw"}
}

func (p *progress) total() int64 {
	if p.twoStep {
		return 2 * p.build
	}
	return p.build
}

func (p *progress) add(n int64) {
	if p.cb == nil {
		return
	}
	d := min(p.done.Add(n), p.build-1) // the build is done only when the table is written
	p.cb(d, p.total())
}

func (p *progress) clone(done, total int64) {
	if p.cb != nil {
		p.cb(p.build+done*p.build/max(total, 1), p.total())
	}
}

func (p *progress) finish() {
	if p.cb != nil {
		p.cb(p.total(), p.total())
	}
}

// buildISO writes an ISO9660 filesystem with Rock Ridge and Joliet names at start.
func buildISO(st backend.Storage, f *os.File, start int64, o Options, root string, own bool, kept []entry) (int64, error) {
	ws, err := os.MkdirTemp("", "makefs-iso-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(ws)
	if err := stage(root, ws, kept, own); err != nil {
		return 0, fmt.Errorf("stage: %w", err)
	}
	// go-diskfs v1.9.4's ISO writer ignores start when it finalizes: give it a storage that begins there.
	iso, err := iso9660.Create(backend.Sub(st, start, 0), 0, 0, 2048, ws)
	if err != nil {
		return 0, err
	}
	label := o.Label
	if label == "" {
		label = "CDROM"
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, DeepDirectories: true, VolumeIdentifier: label}); err != nil {
		return 0, err
	}
	// The primary volume descriptor's volume space size (sectors of 2048 bytes), at 32768+80.
	var b [4]byte
	if _, err := f.ReadAt(b[:], start+32768+80); err != nil {
		return 0, fmt.Errorf("read back the volume descriptor: %w", err)
	}
	return int64(binary.LittleEndian.Uint32(b[:])) * 2048, nil
}
