package fusefs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// streamBatch is how many entries a streamed directory reads at a time: about what one READDIR
// reply of the kernel's 4 KiB buffer takes, a few times over.
const streamBatch = 256

// dirStream is the part of a dirHandle that lists through fsys.DirStreamer: the handle holds a batch
// of entries and the cookie after the last one given, so a directory of a million entries costs what
// the kernel is reading, not the whole listing. The FUSE offset of an entry is its cookie + 2: offsets
// 1 and 2 are those of "." and "..", which come first.
type dirStream struct {
	s      fsys.DirStream
	batch  []fsys.CookieEntry
	cookie uint64
	given  int // entries given so far
	// lookupsAt is the directory's LOOKUP count (treeNode.lookups) when the listing passed plusEntries.
	lookupsAt uint64
}

// plusEntries is how many entries of a streamed listing READDIRPLUS answers with their attributes.
// Past it, entries go to the kernel with no node (nodeid 0: "no attributes", which the kernel accepts
// and looks up on demand): every node the daemon creates stays in memory until the kernel forgets it,
// and reading each entry's inode in the directory's hash order is a random read per entry. A
// million-entry `ls -f` then costs neither. But a listing whose entries the kernel looks up past that
// point is being stat'ed (ls -l: one LOOKUP per entry, 20x slower than the kernel's ls -l), so from the
// first LOOKUP on, its entries get their attributes again. The kernel's own switch for this,
// FUSE_READDIRPLUS_AUTO, is not used: it sends a listing that is not being stat'ed as plain READDIR past
// its first reply, and the kernel then does not know those files, so the primer cannot store into them
// while a walker (grep -r, which lists before it reads) goes through the directory.
const plusEntries = 1024

// streaming opens the stream at the first READDIR when the tree can stream; false means the handle
// lists through ReadDir.
func (d *dirHandle) streaming() (bool, syscall.Errno) {
	if d.stream != nil {
		return true, 0
	}
	ds, ok := d.n.tree.(fsys.DirStreamer)
	if !ok || d.read {
		return false, 0
	}
	s, err := ds.OpenDirStream(d.n.path)
	if err != nil {
		return true, errno(err)
	}
	// A Seekdir may have come first; offsets 1 and 2 are "." and "..", the stream's cookies follow.
	d.stream = &dirStream{s: s, cookie: uint64(max(d.next, 2) - 2)}
	d.next = min(d.next, 2)
	return true, 0
}

// streamDirent gives the next entry of a streamed listing.
func (d *dirHandle) streamDirent() (*fuse.DirEntry, syscall.Errno) {
	st := d.stream
	if len(st.batch) == 0 {
		b, err := st.s.ReadDirAt(st.cookie, streamBatch)
		if err != nil && len(b) == 0 {
			return nil, errno(err)
		}
		st.batch = b
	}
	if len(st.batch) == 0 {
		d.last = nil
		return nil, 0
	}
	e := st.batch[0]
	st.batch, st.cookie = st.batch[1:], e.Next
	st.given++
	if st.given == plusEntries+1 {
		st.lookupsAt = d.n.lookups.Load()
	}
	d.last = e.DirEntry
	return d.fuseEntry(e.DirEntry, e.Next+2), 0
}

// plusDone tells a READDIRPLUS lookup of the entry just given to leave it without attributes.
func (d *dirHandle) plusDone(name string) bool {
	st := d.stream
	return st != nil && st.given > plusEntries && d.n.lookups.Load() == st.lookupsAt &&
		d.last != nil && d.last.Name() == name
}

func (st *dirStream) seek(off uint64) {
	st.cookie, st.batch = off, nil
}

func (st *dirStream) close() {
	st.s.Close()
}
