package fsys

import "io/fs"

// DirStreamer is implemented by readers that can list a directory a batch at a time, resuming at a
// cookie: a FUSE layer then holds only the entries the kernel is reading, however large the
// directory. ReadDir stays the whole sorted listing; a stream gives the entries in on-disk order.
type DirStreamer interface {
	// OpenDirStream opens directory name for streaming; a final symlink is not followed (as ReadDir).
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
// inode (ext4 keeps it in the directory record): a listing that only wants names, types and inode
// numbers, as READDIR does, then reads no inode.
type EntryIno interface {
	Ino() uint64
}
