package vddk

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
)

// Remote is a disk another machine serves (an NBD export). A package above vddk opens it and registers
// itself with RegisterRemote; vddk reads it as a raw link of its own, so that every command, a clone and
// a redo log over it work as for a file. Nothing is ever written to it.
type Remote interface {
	io.ReaderAt
	io.Closer
	Size() int64
	// Allocated reports [off, off+n) in runs, in increasing order: data, or a hole that reads as zeros.
	Allocated(off, n int64, emit func(off, n int64, data bool)) error
	// String names the disk without host, address or credentials: it goes into messages and logs.
	String() string
}

type remoteOpener struct {
	is   func(name string) bool
	open func(uri string) (Remote, error)
}

var (
	remoteMu      sync.RWMutex
	remoteOpeners []remoteOpener
)

// RegisterRemote teaches Open a kind of network disk: is recognises its names (URIs), open connects.
func RegisterRemote(is func(name string) bool, open func(uri string) (Remote, error)) {
	remoteMu.Lock()
	defer remoteMu.Unlock()
	remoteOpeners = append(remoteOpeners, remoteOpener{is, open})
}

// IsRemote says whether name is the URI of a network disk a registered opener reads.
func IsRemote(name string) bool { return findRemote(name) != nil }

func findRemote(name string) *remoteOpener {
	remoteMu.RLock()
	defer remoteMu.RUnlock()
	for i := range remoteOpeners {
		if remoteOpeners[i].is(name) {
			return &remoteOpeners[i]
		}
	}
	return nil
}

// ErrRemoteParent marks a chain whose parent is a network disk the caller did not name.
var ErrRemoteParent = errors.New("the parent is a network disk")

// RedactURI is a URI without its user name and password: what Path and messages show of a network disk.
func RedactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return uri
	}
	u.User = nil
	return u.String()
}

// openRemoteDisk opens a network disk as a one-link Disk, read-only.
func openRemoteDisk(uri string, opts Options) (*Disk, error) {
	shown := RedactURI(uri)
	if opts.Writable {
		return nil, newErr(ErrInvalidArg, shown, "a network disk is never written: write into a redo log over it")
	}
	l, err := remoteLink(uri)
	if err != nil {
		return nil, err
	}
	return &Disk{path: shown, links: []*link{l}, size: l.size, opts: opts, remoteURI: uri}, nil
}

// remoteLink connects to uri and makes it a link: one extent, described as a raw disk.
func remoteLink(uri string) (*link, error) {
	o := findRemote(uri)
	if o == nil {
		return nil, newErr(ErrInvalidArg, RedactURI(uri), "no opener for this kind of URI")
	}
	r, err := o.open(uri)
	if err != nil {
		return nil, &Error{Code: ErrFileAccessError, Path: RedactURI(uri), Msg: "cannot open the network disk", Err: err}
	}
	size := r.Size()
	line := ExtentLine{Access: "RDONLY", Sectors: (size + SectorSize - 1) / SectorSize, Type: "FLAT", Filename: r.String()}
	return &link{path: RedactURI(uri), desc: synthDescriptor("raw", "FLAT", line.Sectors, line.Filename), size: size,
		starts: []int64{0}, exts: []extent{&remoteExtent{r: r, inf: ExtentInfo{ExtentLine: line, Format: "remote"}}}}, nil
}

// openRemoteParent opens a parent hint that is a network disk's URI: only the one the caller named in
// Options.RemoteParent, so that a descriptor cannot make us connect to a host of its choosing.
func (o *opener) openRemoteParent(child *link, hint string) (*link, error) {
	if hint != o.opts.RemoteParent {
		return nil, &Error{Code: ErrDiskOpenParent, Path: child.path, Msg: fmt.Sprintf("parent %q not opened", RedactURI(hint)),
			Err: fmt.Errorf("%w: it is opened only when given as the disk's base", ErrRemoteParent)}
	}
	p, err := remoteLink(hint)
	if err != nil {
		return nil, &Error{Code: ErrDiskOpenParent, Path: child.path, Msg: fmt.Sprintf("cannot open parent %q", RedactURI(hint)), Err: err}
	}
	return p, nil // a parent shorter than the child reads as zeros past its end, as a file's does
}

// remoteExtent is a network disk read whole: all of it is this link's (no parent below it).
type remoteExtent struct {
	r   Remote
	inf ExtentInfo
}

func (e *remoteExtent) readAt(p []byte, off int64, _ parentReader) error {
	n, err := e.r.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err == io.EOF {
		return newErr(ErrFileError, e.inf.Filename, "the network disk ends before offset %d", off+int64(len(p)))
	}
	if err != nil {
		return wrapErr(ErrFileError, e.inf.Filename, err, "read")
	}
	return nil
}

func (e *remoteExtent) alloc(off, n int64, emit func(off, n int64, st allocState)) error {
	err := e.r.Allocated(off, n, func(o, k int64, data bool) {
		st := allocZero
		if data {
			st = allocData
		}
		emit(o, k, st)
	})
	if err != nil {
		return wrapErr(ErrFileError, e.inf.Filename, err, "allocation map")
	}
	return nil
}

func (e *remoteExtent) info() ExtentInfo { return e.inf }
func (e *remoteExtent) close() error     { return e.r.Close() }
