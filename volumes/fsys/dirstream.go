package fsys

import "io/fs"

// DirStreamer is implemented by readers that can list a directory a batch at a time, resuming at a
// cookie: a FUSE layer then holds only the entries the kernel is reading, however large the
// directory. ReadDir stays the whole sorted listing; a stream gives the entries in on-disk order.
type DirStreamer interface {
	// OpenDirStream opens directory name for streaming, resolving name as the reader's ReadDir does.
	OpenDirStream(name string) (DirStream, error)
}

// DirStream reads one directory's entries. It is used by one caller at a time.
type DirStream interface {
	// ReadDirAt returns up to n entries from cookie on (0 is the start), each with the cookie that
	// resumes after it; none and a nil error at the end. Cookies are positive, opaque, and stay valid
	// for the life of the stream.
	ReadDirAt(cookie uint64, n int) ([]CookieEntry, error)
	Close() error
}

// CookieEntry is one streamed entry and the cookie of the position after it.
type CookieEntry struct {
	fs.DirEntry
	Next uint64
}

// EntryIno is implemented by directory entries that know their Stat.Ino without reading the entry's
// inode (ext4 and XFS keep it in the directory record): a listing that only wants names, types and inode
// numbers, as READDIR does, then reads no inode.
type EntryIno interface {
	Ino() uint64
}

// DirOnce remembers where a streamed listing named each directory (by inode number and cookie), so that
// a second name of one (a hard link to a directory: damage) is left out, as the sorted listings leave
// it out, while a rewound listing names it again at the same place.
type DirOnce map[uint64]uint64

// First reports whether the entry at cookie at is the place that names directory ino.
func (d DirOnce) First(ino, at uint64) bool {
	if first, ok := d[ino]; ok && first != at {
		return false
	}
	d[ino] = at
	return true
}

// IndexStream serves a stream over an in-memory listing of n entries (a directory kept in its inode):
// the cookie is an index + 1. It calls add for the entries from cookie on until add has given max.
func IndexStream(n int, cookie uint64, max int, add func(i int) (given int)) {
	for i := cookie; i < uint64(n); i++ {
		if add(int(i)) >= max {
			return
		}
	}
}
