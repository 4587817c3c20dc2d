package vddk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
)

// CreateTemporaryChild makes a monolithicSparse child of the disk at parentPath that has no name, in
// the folder dir, and opens it for writing (with its chain, as Open): the redo log of a mount that
// keeps no changes. The file is made with O_TMPFILE, so it never has a name and nothing is left in dir
// however the process ends, kill -9 included; where dir's filesystem has no O_TMPFILE it is made under
// a random name and unlinked at once (then only a kill in between leaves it). The disk's Path is the
// name it would have had: dir/PARENT-redo.vmdk.
func CreateTemporaryChild(parentPath, dir string, opts Options) (*Disk, error) {
	return createTemporaryChild(parentPath, dir, opts, unix.O_TMPFILE)
}

// createTemporaryChild is CreateTemporaryChild; tmpfile 0 takes the fallback (for its test).
func createTemporaryChild(parentPath, dir string, opts Options, tmpfile int) (*Disk, error) {
	parent, err := Open(parentPath, childOptions(parentPath, opts))
	if err != nil {
		return nil, err
	}
	// Closed before the chain opens it again: a server serving one client at a time (qemu-nbd without
	// -e) would not answer a second connection.
	closeParent := sync.OnceValue(parent.Close)
	defer closeParent()
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, wrapErr(ErrInvalidArg, dir, err, "path")
	}
	name := strings.TrimSuffix(filepath.Base(parent.Path()), filepath.Ext(parent.Path())) + "-redo.vmdk"
	if parent.remoteURI != "" {
		// A network disk: the child names its URI, and the chain reconnects to it by that name.
		name, opts.RemoteParent = "nbd-redo.vmdk", parentPath
	}
	path := filepath.Join(absDir, name)
	p := CreateParams{Type: TypeMonolithicSparse, Capacity: parent.Size(), Adapter: "ide", HWVersion: 4}
	sectors, err := capacitySectors(path, p)
	if err != nil {
		return nil, err
	}
	// The hint is absolute: the child is never seen by anything that could move it with its parent.
	link := childLink(parent, parent.Path())
	link.cid = newCID()
	img, err := sparseExtentImage(sectors, descriptorText(p, sectors, link, "SPARSE", []extentFile{{name, sectors}}))
	if err != nil {
		return nil, wrapErr(ErrInvalidArg, path, err, "create temporary child")
	}
	f, err := unnamedFile(absDir, tmpfile)
	if err != nil {
		return nil, wrapErr(ErrFileAccessError, path, err, "create temporary child")
	}
	if _, err := f.WriteAt(img, 0); err != nil {
		f.Close()
		return nil, wrapErr(ErrFileError, path, err, "write temporary child")
	}
	root, err := confine.OpenDir(absDir)
	if err != nil {
		f.Close()
		return nil, wrapErr(ErrFileNotFound, path, err, "folder")
	}
	wopts := opts
	wopts.Writable = true
	closeParent()
	return openChain(opened{f: f, dir: root, rel: name, path: path}, wopts)
}

// unnamedFile opens a new read-write file in dir that has no name: O_TMPFILE where dir's filesystem
// has it, or else a file unlinked as soon as it is made.
func unnamedFile(dir string, tmpfile int) (*os.File, error) {
	if tmpfile != 0 {
		fd, err := unix.Open(dir, unix.O_RDWR|unix.O_CLOEXEC|tmpfile, 0o600)
		if err == nil {
			return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
		}
		// EOPNOTSUPP: the filesystem has none; EISDIR: the kernel predates it (3.11).
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) {
			return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
		}
	}
	f, err := os.CreateTemp(dir, ".vmdk-redo-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
