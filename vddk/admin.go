package vddk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
)

// Disk administration: rename, unlink, commit a child into its parent, re-parent, grow, shrink,
// defragment, space estimates. Each works on the named link only; parents are opened read-only except
// by Combine, which writes into the parent by design.

// files lists the files of a link beneath its folder: its descriptor and every extent file, each once.
func (l *link) files() []string {
	seen := map[string]bool{l.name: true}
	out := []string{l.name}
	for _, rel := range l.rels {
		if rel != "" && !seen[rel] {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	return out
}

// release closes the disk but keeps its top link's folder open, for removing or renaming its files
// beneath that very folder afterwards.
func (d *Disk) release() (*confine.Dir, error) {
	root := d.links[0].root
	d.links[0].root = nil
	return root, d.Close()
}

// Unlink deletes a disk's descriptor and all its extent files (VixDiskLib_Unlink). Its parents stay.
// Only the files the disk was opened from are removed, each beneath the folder they were opened in:
// an extent line reaching outside it ("../x") was refused at open, and is never deleted.
func Unlink(path string) error {
	d, err := Open(path, Options{SingleLink: true, Writable: true})
	if err != nil {
		return err
	}
	files := d.links[0].files()
	root, _ := d.release()
	defer root.Close()
	var first error
	for _, f := range files {
		if err := root.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
			first = wrapErr(ErrFileError, filepath.Join(root.Path, f), err, "remove")
		}
	}
	return first
}

// Rename gives a disk a new name (VixDiskLib_Rename): the descriptor and each extent file in its folder
// whose name starts with the old disk's name are renamed, and the descriptor is rewritten to name them.
// Only the files the disk was opened from move, from beneath its folder; none is ever replaced.
// Children that name this disk as their parent are not changed (point them at it again with Attach).
func Rename(oldPath, newPath string) error {
	newDir, err := confine.OpenDir(filepath.Dir(newPath))
	if err != nil {
		return wrapErr(ErrFileNotFound, newPath, err, "folder")
	}
	defer newDir.Close()
	d, err := Open(oldPath, Options{SingleLink: true, Writable: true})
	if err != nil {
		return err
	}
	l := d.links[0]
	oldBase := strings.TrimSuffix(filepath.Base(oldPath), filepath.Ext(oldPath))
	newBase := strings.TrimSuffix(filepath.Base(newPath), filepath.Ext(newPath))
	type move struct{ from, to string }
	var moves []move
	for i, rel := range l.rels {
		switch {
		case rel == "":
			continue
		case rel == l.name: // the descriptor's own file (monolithic sparse)
			l.desc.Extents[i].Filename = filepath.Base(newPath)
		case !strings.ContainsRune(rel, filepath.Separator) && strings.HasPrefix(rel, oldBase):
			to := newBase + strings.TrimPrefix(rel, oldBase)
			moves = append(moves, move{rel, to})
			l.desc.Extents[i].Filename = to
		}
	}
	moves = append(moves, move{l.name, filepath.Base(newPath)})
	for _, m := range moves {
		if _, err := os.Lstat(filepath.Join(newDir.Path, m.to)); err == nil {
			d.Close()
			return newErr(ErrFileAlreadyExists, filepath.Join(newDir.Path, m.to), "file already exists")
		}
	}
	if err := l.rewriteDescriptor(); err != nil {
		d.Close()
		return err
	}
	root, _ := d.release()
	defer root.Close()
	for i, m := range moves {
		if err := confine.Rename(root, m.from, newDir, m.to); err != nil {
			for _, back := range moves[:i] { // put back what was moved
				confine.Rename(newDir, back.to, root, back.from)
			}
			return wrapErr(ErrFileError, filepath.Join(root.Path, m.from), err, "rename")
		}
	}
	return nil
}

// Attach points a child at a parent (VixDiskLib_Attach, `vmdk rebase`): the child's parentCID becomes
// the parent's CID and its parentFileNameHint names the parent relative to the child. The child's data
// is not changed: what it does not hold is read from the new parent from now on.
func Attach(childPath, parentPath string) error {
	parent, err := Open(parentPath, Options{SingleLink: true})
	if err != nil {
		return err
	}
	defer parent.Close()
	if parent.Path() == mustAbs(childPath) {
		return newErr(ErrInvalidArg, childPath, "a disk cannot be its own parent")
	}
	child, err := Open(childPath, Options{SingleLink: true, Writable: true})
	if err != nil {
		return err
	}
	if child.Size() != parent.Size() {
		child.Close()
		return newErr(ErrDiskCapacityMismatch, childPath, "child holds %d bytes, parent %s holds %d", child.Size(), parentPath, parent.Size())
	}
	l := child.links[0]
	hint, err := filepath.Rel(filepath.Dir(l.path), parent.Path())
	if err != nil {
		hint = parent.Path()
	}
	l.desc.ParentCID = parent.links[0].desc.CID
	l.desc.ParentFileNameHint = filepath.ToSlash(hint)
	err = l.rewriteDescriptor()
	if cerr := child.Close(); err == nil {
		err = cerr
	}
	return err
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// Combine commits a child into its parent and removes the child (VixDiskLib_Combine, `vmdk commit`):
// every range the child holds, data or zeroed, is written into the parent.
func Combine(childPath string, progress Progress) error {
	child, err := Open(childPath, Options{})
	if err != nil {
		return err
	}
	if len(child.links) < 2 {
		child.Close()
		return newErr(ErrInvalidArg, childPath, "the disk has no parent to commit into")
	}
	parentPath := child.links[1].path
	child.Close()
	// The child alone (what it holds) and the parent opened for writing over its own chain.
	top, err := Open(childPath, Options{SingleLink: true})
	if err != nil {
		return err
	}
	defer top.Close()
	parent, err := Open(parentPath, Options{Writable: true, IgnoreCIDMismatch: true})
	if err != nil {
		return err
	}
	ranges, err := top.heldRanges()
	if err == nil {
		err = copyRanges(top, parent, ranges, false, progress)
	}
	if err != nil {
		parent.Close()
		return err
	}
	if err := parent.Close(); err != nil {
		return err
	}
	return Unlink(childPath)
}

// heldRanges lists the byte ranges the top link itself holds: data or explicit zeros.
func (d *Disk) heldRanges() ([][2]int64, error) {
	var out [][2]int64
	l := d.links[0]
	for k, e := range l.exts {
		start, end := l.extentRange(k)
		err := e.alloc(0, end-start, func(o, n int64, st allocState) {
			if st == allocNone {
				return
			}
			o += start
			if m := len(out); m > 0 && out[m-1][0]+out[m-1][1] == o {
				out[m-1][1] += n
				return
			}
			out = append(out, [2]int64{o, n})
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SpaceNeededForClone estimates the bytes a clone of the disk into type typ takes
// (VixDiskLib_SpaceNeededForClone): the allocated data for sparse types, the capacity for flat ones.
func (d *Disk) SpaceNeededForClone(typ string) (int64, error) {
	switch typ {
	case TypeMonolithicFlat, TypeTwoGbMaxExtentFlat, TypeVMFS, "raw":
		return d.size, nil
	}
	blocks, err := d.AllocatedBlocks(0, uint64(d.size)/SectorSize, 128)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range blocks {
		n += int64(b.Length) * SectorSize
	}
	l := newSparseLayout(d.size/SectorSize, true)
	return n + int64(l.overhead)*SectorSize, nil
}

// Grow enlarges a disk to newSize bytes (VixDiskLib_Grow). Flat and split disks grow in place (the last
// flat file is extended, split disks get more extents); a monolithic sparse or stream disk is rewritten
// with larger tables, keeping its CID and chain keys. The new space reads as zeros.
func Grow(path string, newSize int64, progress Progress) error {
	d, err := Open(path, Options{SingleLink: true})
	if err != nil {
		return err
	}
	oldSize := d.size
	typ := d.links[0].desc.CreateType
	d.Close()
	if newSize <= oldSize {
		return newErr(ErrInvalidArg, path, "new size %d is not larger than the current %d", newSize, oldSize)
	}
	switch typ {
	case TypeMonolithicFlat, TypeVMFS, TypeTwoGbMaxExtentFlat, TypeTwoGbMaxExtentSparse:
		return growInPlace(path, typ, newSize)
	case TypeMonolithicSparse, TypeStreamOptimized:
		return rewriteLink(path, newSize, false, progress)
	}
	return newErr(ErrDiskNotSupported, path, "growing %s disks is not supported", typ)
}

func growInPlace(path, typ string, newSize int64) error {
	d, err := Open(path, Options{SingleLink: true, Writable: true})
	if err != nil {
		return err
	}
	l := d.links[0]
	sectors := (newSize + SectorSize - 1) / SectorSize
	add := sectors - l.size/SectorSize
	desc := l.desc
	last := &desc.Extents[len(desc.Extents)-1]
	dir := filepath.Dir(l.path)
	if typ != TypeTwoGbMaxExtentSparse {
		// Flat: extend the last file (split flat disks fill the last extent up to the split size first),
		// through the file opened for it, never by a name the descriptor gives.
		room := add
		if typ == TypeTwoGbMaxExtentFlat {
			room = min(add, max(0, SplitSectors-last.Sectors))
		}
		fe, isFlat := l.exts[len(l.exts)-1].(*flatExtent)
		if room > 0 && !isFlat {
			d.Close()
			return newErr(ErrDiskNotSupported, path, "the last extent is not a flat file")
		}
		if room > 0 {
			if err := fe.f.Truncate((last.Offset + last.Sectors + room) * SectorSize); err != nil {
				d.Close()
				return wrapErr(ErrFileError, fe.inf.Path, err, "extend")
			}
			last.Sectors += room
			add -= room
		}
	}
	base := strings.TrimSuffix(filepath.Base(l.path), filepath.Ext(l.path))
	letter, extType := "f", "FLAT"
	if typ == TypeTwoGbMaxExtentSparse {
		letter, extType = "s", "SPARSE"
	}
	for i := len(desc.Extents) + 1; add > 0; i++ {
		n := min(add, SplitSectors)
		name := fmt.Sprintf("%s-%s%03d.vmdk", base, letter, i)
		f := filepath.Join(dir, name)
		var err error
		if extType == "SPARSE" {
			err = writeSparseExtent(f, n, "")
		} else {
			err = writeFlatExtent(f, n)
		}
		if err != nil {
			d.Close()
			return wrapErr(ErrFileError, f, err, "create extent")
		}
		desc.Extents = append(desc.Extents, ExtentLine{Access: "RW", Sectors: n, Type: extType, Filename: name, HasOffset: extType == "FLAT"})
		desc.Lines = insertExtentLine(desc.Lines, formatExtentLine(desc.Extents[len(desc.Extents)-1]))
		add -= n
	}
	if c := desc.DDB["geometry.cylinders"]; c != "" {
		heads, secs := int64(16), int64(63)
		fmt.Sscan(desc.DDB["geometry.heads"], &heads)
		fmt.Sscan(desc.DDB["geometry.sectors"], &secs)
		if heads > 0 && secs > 0 {
			desc.DDB["geometry.cylinders"] = fmt.Sprint(min((sectors+heads*secs-1)/(heads*secs), 65535))
		}
	}
	err = l.rewriteDescriptor()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// insertExtentLine adds an extent line after the last one.
func insertExtentLine(lines []string, line string) []string {
	at := len(lines)
	for i, s := range lines {
		if isExtentLine(strings.TrimSpace(s)) {
			at = i + 1
		}
	}
	return append(lines[:at], append([]string{line}, lines[at:]...)...)
}

// Shrink gives back the space of grains that hold only zeros (VixDiskLib_Shrink): the disk is rewritten
// without them. In a child, zero grains hide the parent's data, so they are kept.
func Shrink(path string, progress Progress) error {
	return rewriteLink(path, 0, true, progress)
}

// Defragment rewrites a sparse disk with its grains in order and no unused space
// (VixDiskLib_Defragment).
func Defragment(path string, progress Progress) error {
	return rewriteLink(path, 0, false, progress)
}

// rewriteLink rewrites one sparse link into fresh files of the same type (and size, or newSize), with
// its grains in increasing order, then moves them over the old ones. Its descriptor keeps its CID,
// parentCID, hint and disk database, so children and parents stay valid.
func rewriteLink(path string, newSize int64, dropZeros bool, progress Progress) error {
	src, err := Open(path, Options{SingleLink: true, Writable: true}) // writable: locks out other writers
	if err != nil {
		return err
	}
	defer src.Close()
	l := src.links[0]
	typ := l.desc.CreateType
	if typ != TypeMonolithicSparse && typ != TypeStreamOptimized && typ != TypeTwoGbMaxExtentSparse {
		return newErr(ErrDiskNotSupported, path, "only hosted sparse disks are rewritten (this one is %s)", typ)
	}
	hasParent := l.desc.ParentFileNameHint != ""
	if newSize == 0 {
		newSize = src.size
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(l.path), ".vmdk-rewrite-")
	if err != nil {
		return wrapErr(ErrFileError, path, err, "temporary folder")
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(l.path))
	if typ == TypeStreamOptimized {
		if err := src.writeStream(tmp, CreateParams{Adapter: adapterOr(src), HWVersion: 4}, progress); err != nil {
			return err
		}
		if newSize != src.size {
			return newErr(ErrDiskNotSupported, path, "a stream-optimized disk is grown by converting it")
		}
	} else {
		if err := Create(tmp, CreateParams{Type: typ, Capacity: newSize, Adapter: adapterOr(src)}); err != nil {
			return err
		}
		dst, err := Open(tmp, Options{Writable: true, SingleLink: true})
		if err != nil {
			return err
		}
		ranges, err := src.heldRanges()
		if err == nil {
			err = copyRanges(src, dst, ranges, dropZeros && !hasParent, progress)
		}
		if err == nil {
			// Keep the identity of the link: same CID, parent and disk database.
			nd := dst.links[0].desc
			nd.ParentCID, nd.ParentFileNameHint = l.desc.ParentCID, l.desc.ParentFileNameHint
			for _, k := range l.desc.DDBOrder {
				if _, ok := nd.DDB[k]; !ok {
					nd.DDBOrder = append(nd.DDBOrder, k)
				}
				nd.DDB[k] = l.desc.DDB[k]
			}
			nd.CID = l.desc.CID // the content is the same: so is the CID
			if c := nd.DDB["geometry.cylinders"]; c != "" && newSize != src.size {
				nd.DDB["geometry.cylinders"] = fmt.Sprint(dstCylinders(newSize, nd))
			}
			err = dst.links[0].rewriteDescriptor()
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// Move the new files over the old ones (same names: the rewrite used the same base name).
	entries, err := os.ReadDir(tmpDir)
	if err != nil {
		return wrapErr(ErrFileError, tmpDir, err, "list")
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tmpDir, e.Name()), filepath.Join(filepath.Dir(l.path), e.Name())); err != nil {
			return wrapErr(ErrFileError, e.Name(), err, "replace")
		}
	}
	return nil
}

func dstCylinders(size int64, d *Descriptor) int64 {
	heads, secs := int64(16), int64(63)
	fmt.Sscan(d.DDB["geometry.heads"], &heads)
	fmt.Sscan(d.DDB["geometry.sectors"], &secs)
	return min((size/SectorSize+heads*secs-1)/max(1, heads*secs), 65535)
}

func adapterOr(d *Disk) string {
	if a := d.Metadata()["adapterType"]; contains(Adapters, a) {
		return a
	}
	return "ide"
}

// copyRanges copies byte ranges of src's top link into dst at the same offsets, in order, each run of
// data with one write; with dropZeros, all-zero 64 KiB pieces are left out.
func copyRanges(src, dst *Disk, ranges [][2]int64, dropZeros bool, progress Progress) error {
	const piece = 64 << 10
	var total, done int64
	for _, r := range ranges {
		total += r[1]
	}
	skip := func(b []byte) bool { return dropZeros && IsZero(b) }
	buf := make([]byte, copyChunkSize)
	for _, r := range ranges {
		for o := r[0]; o < r[0]+r[1]; o += copyChunkSize {
			n := min(copyChunkSize, r[0]+r[1]-o)
			if err := src.readLink(0, buf[:n], o); err != nil {
				return err
			}
			for k := int64(0); k < n; {
				if skip(buf[k:min(n, k+piece)]) {
					k += piece
					continue
				}
				j := k + piece
				for j < n && !skip(buf[j:min(n, j+piece)]) {
					j += piece
				}
				j = min(j, n)
				if _, err := dst.WriteAt(buf[k:j], o+k); err != nil {
					return err
				}
				k = j
			}
			done += n
			if progress != nil {
				progress(done, total)
			}
		}
	}
	if progress != nil {
		progress(total, total)
	}
	return nil
}
