package fusefs

import (
	"context"
	"io"
	iofs "io/fs"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var (
	_ fs.NodeOpendirHandler = (*treeNode)(nil)
	_ fs.NodeReader         = (*treeNode)(nil)
	_ fs.NodeFlusher        = (*treeNode)(nil)
	_ fs.NodeOnForgetter    = (*treeNode)(nil)
)

// OpendirHandle lists a directory through a handle that also answers READDIRPLUS lookups from the
// entries it just listed, so a walk costs one directory read instead of one path resolution per entry.
// On a read-only mount the kernel may keep the listing in its page cache across opens.
func (n *treeNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	var cache uint32
	if n.layout.noOpen {
		cache = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &dirHandle{n: n}, cache, 0
}

// dirHandle is one open directory: its entries, read at the first READDIR, and the position in them.
// go-fuse serialises the calls on one handle.
type dirHandle struct {
	n      *treeNode
	ents   []iofs.DirEntry
	read   bool
	next   int           // index of the next entry, "." and ".." first; the FUSE offset of entry i is i+1
	last   iofs.DirEntry // the entry Readdirent gave last, which a READDIRPLUS Lookup asks for
	stream *dirStream    // set when the tree streams its directories (fsys.DirStreamer)

	mu       sync.Mutex      // for listed and listedIn: RELEASEDIR may come outside the serialised calls
	listed   []*treeNode     // files looked up by READDIRPLUS, for the primer
	listedIn context.Context // the request they were listed in
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
)

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	d.prime(ctx)
	d.mu.Unlock()
	streamed, en := d.streaming()
	if en != 0 {
		return nil, en
	}
	if !streamed && !d.read {
		ents, err := d.n.tree.ReadDir(d.n.path)
		if err != nil {
			return nil, errno(err)
		}
		if d.n.layout.ListStreams {
			ents = d.n.withStreams(ents)
		}
		d.ents, d.read = ents, true
	}
	if d.next < 2 {
		de := dotEntries(d.n.EmbeddedInode())[d.next]
		d.next++
		de.Off = uint64(d.next)
		d.last = nil
		return &de, 0
	}
	if streamed {
		return d.streamDirent()
	}
	if d.next >= len(d.ents)+2 {
		d.last = nil
		return nil, 0
	}
	e := d.ents[d.next-2]
	d.next++
	d.last = e
	return d.fuseEntry(e, uint64(d.next)), 0
}

// fuseEntry is the READDIR form of e, whose FUSE offset (where the listing resumes after it) is off.
func (d *dirHandle) fuseEntry(e iofs.DirEntry, off uint64) *fuse.DirEntry {
	de := &fuse.DirEntry{Name: e.Name(), Mode: modeBits(e.Type()), Off: off}
	if ie, ok := e.(fsys.EntryIno); ok {
		de.Ino = d.n.ino(ie.Ino()) // no inode read: in hash order, each would be a random read
		return de
	}
	if fi, err := e.Info(); err == nil {
		if st := fsys.StatOf(fi); st != nil {
			de.Ino, de.Mode = d.n.ino(st.Ino), st.Mode&syscall.S_IFMT
		}
	}
	return de
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if d.stream != nil {
		d.next = int(min(off, 2))
		d.stream.seek(max(off, 2) - 2)
		return 0
	}
	if d.read && off > uint64(len(d.ents)+2) {
		return syscall.EINVAL
	}
	d.next = int(off)
	return 0
}

// Lookup answers READDIRPLUS for the entry just listed from its directory entry, without resolving
// its path again; anything else goes through the node's own Lookup.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.plusDone(name) {
		return nil, syscall.EAGAIN // any error: go-fuse then gives the entry no node
	}
	if d.last == nil || d.last.Name() != name {
		return d.n.lookup(ctx, name, out)
	}
	if se, ok := d.last.(*streamEntry); ok {
		return d.n.newStreamChild(ctx, se.owner, se.stream, &se.fi.St, out), 0
	}
	fi, err := d.last.Info()
	if err != nil {
		return nil, errno(err)
	}
	st := fsys.StatOf(fi)
	if st == nil {
		return d.n.lookup(ctx, name, out)
	}
	c := d.n.newChild(ctx, d.n.child(name), st, out)
	if tn, ok := c.Operations().(*treeNode); ok && d.n.layout.primer != nil {
		d.mu.Lock()
		d.prime(ctx) // an entry left over from the last request comes before any Readdirent of this one
		d.listed = append(d.listed, tn)
		d.mu.Unlock()
	}
	return c, 0
}

// prime hands the entries of earlier replies to the primer. The kernel takes in a READDIRPLUS reply's
// entries before it asks for more, and until then it does not know the files: storing into them would
// fail. So entries wait until the next request of the listing (the one that ends it included) or the
// closing of the directory.
func (d *dirHandle) prime(ctx context.Context) {
	if ctx == d.listedIn || len(d.listed) == 0 {
		d.listedIn = ctx
		return
	}
	for _, n := range d.listed {
		d.n.layout.primer.add(n)
	}
	d.listed, d.listedIn = d.listed[:0], ctx
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prime(ctx)
	if d.stream != nil {
		d.stream.close()
	}
}

// Read serves reads on a mount without OPEN requests (the kernel sends no handle): the node opens its
// file at the first read and lets it go once a read reaches the end, so a walk that reads every file
// does not keep one open file per file it has read.
func (n *treeNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if tf, ok := f.(*treeFile); ok {
		return tf.Read(ctx, dest, off)
	}
	n.layout.primer.reading()
	of, en := n.acquire()
	if en != 0 {
		return nil, en
	}
	k, err := of.f.ReadAt(dest, off)
	n.release(of, off+int64(k) >= n.st.Size || k < len(dest))
	if err != nil && err != io.EOF {
		return nil, readFailed(n.path, err)
	}
	return dataResult(dest[:k]), 0
}

// openFile is a node's file with the reads in flight on it.
type openFile struct {
	f     fsys.File
	users int
}

func (n *treeNode) acquire() (*openFile, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.file == nil {
		f, en := n.open()
		if en != 0 {
			return nil, en
		}
		n.file = &openFile{f: f}
	}
	n.file.users++
	return n.file, 0
}

// release ends a read; at the end of the file the node lets the file go, closing it when no other
// read still uses it.
func (n *treeNode) release(of *openFile, atEnd bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	of.users--
	if atEnd && n.file == of {
		n.file = nil
	}
	if of.users == 0 && n.file != of {
		of.f.Close()
	}
}

func (n *treeNode) open() (fsys.File, syscall.Errno) {
	if n.stream != "" {
		return n.openStream()
	}
	if o, ok := n.tree.(fsys.InodeOpener); ok && n.st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		f, err := o.OpenInode(n.st.Ino, n.path)
		if err != nil {
			return nil, errno(err)
		}
		return f, 0
	}
	f, err := n.tree.Open(n.path)
	if err != nil {
		return nil, errno(err)
	}
	file, ok := f.(fsys.File)
	if !ok {
		f.Close()
		return nil, syscall.EIO
	}
	return file, 0
}

func (n *treeNode) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	return flushReply(n.layout)
}

func (n *treeNode) OnForget() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.file != nil && n.file.users == 0 {
		n.file.f.Close()
	}
	n.file = nil
}
