// Package fsys is the read-only file tree that every filesystem reader in vmdkmount implements.
//
// A reader (ext4, NTFS, FAT, exFAT, XFS, ISO9660, squashfs, …) opens a volume's io.ReaderAt and returns an
// FS. Names are io/fs paths: slash-separated, relative to the volume root, "." for the root itself.
// Open and Stat follow symbolic links inside the tree (an absolute guest target is resolved against the
// volume root, never against the host); Lstat, ReadLink, ReadDir and Xattr do not follow the final link.
// Every FileInfo.Sys() returns a *Stat.
package fsys

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// FS is a read-only filesystem tree. Implementations are safe for concurrent use.
type FS interface {
	fs.FS
	fs.ReadDirFS
	fs.StatFS
	fs.ReadLinkFS

	// ListXattr names the extended attributes of name (not following a final symlink), sorted.
	ListXattr(name string) ([]string, error)
	// GetXattr returns one extended attribute's value; ErrNoXattr when it is absent.
	GetXattr(name, attr string) ([]byte, error)
	// Usage reports the volume's size and free space, for statfs.
	Usage() Usage
	// Close releases caches; it never closes the underlying reader.
	Close() error
}

// File is what FS.Open returns for a regular file: it also reads at offsets, concurrently.
type File interface {
	fs.File
	io.ReaderAt
	io.Seeker
}

// InodeOpener is implemented by readers that can open a regular file by the Stat.Ino their entries
// carry, without resolving its path again: a FUSE layer already holds that number for every entry it
// has shown. name is only used in errors and in the file's Stat.
type InodeOpener interface {
	OpenInode(ino uint64, name string) (File, error)
}

// InodeXattrGetter is implemented by readers that can read an extended attribute by the Stat.Ino of
// an entry, without resolving its path again: ls -l asks two attributes of every entry it lists.
// name is only used in errors.
type InodeXattrGetter interface {
	GetXattrInode(ino uint64, name, attr string) ([]byte, error)
}

// Content a reader recognises but cannot present (data kept outside the volume, encryption, an
// unimplemented compression) fails with an error wrapping errors.ErrUnsupported, which a FUSE layer
// reports as EOPNOTSUPP; EIO stays for damage.

// ErrNoXattr is returned (wrapped) by GetXattr for an attribute the entry does not have.
var ErrNoXattr = errors.New("no such extended attribute")

// Unix file type bits as stored in Stat.Mode (the values of st_mode).
const (
	S_IFMT   = 0o170000
	S_IFSOCK = 0o140000
	S_IFLNK  = 0o120000
	S_IFREG  = 0o100000
	S_IFBLK  = 0o060000
	S_IFDIR  = 0o040000
	S_IFCHR  = 0o020000
	S_IFIFO  = 0o010000
	S_ISUID  = 0o4000
	S_ISGID  = 0o2000
	S_ISVTX  = 0o1000
)

// Stat is the detail behind FileInfo.Sys(): what a FUSE layer and a forensic user need.
type Stat struct {
	Ino   uint64 // inode / MFT record / directory-entry derived number; hard links share it
	Nlink uint32
	Mode  uint32 // full Unix st_mode: type bits | setuid/setgid/sticky | permission bits
	Uid   uint32
	Gid   uint32
	Rdev  uint64 // device number of a character/block device, Linux encoding (major<<8|minor for small values, as unix.Mkdev)
	Size  int64  // logical size in bytes (symlink: length of the target)
	// AllocatedSize is the number of bytes the entry occupies on the volume (st_blocks*512).
	AllocatedSize int64
	// Times are zero when the format does not store them (for example Btime on ext2, Atime on ISO9660).
	Atime, Mtime, Ctime, Btime time.Time
}

// Usage is a volume's statfs view.
type Usage struct {
	BlockSize  uint32
	Blocks     uint64 // total blocks of BlockSize
	FreeBlocks uint64
	Files      uint64 // total inodes (0 when the format has no fixed count)
	FreeFiles  uint64
	NameMax    uint32 // longest name in bytes
	Label      string
	UUID       string
}

// FileMode turns a Unix st_mode into an io/fs FileMode.
func FileMode(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	switch mode & S_IFMT {
	case S_IFDIR:
		m |= fs.ModeDir
	case S_IFLNK:
		m |= fs.ModeSymlink
	case S_IFIFO:
		m |= fs.ModeNamedPipe
	case S_IFSOCK:
		m |= fs.ModeSocket
	case S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case S_IFBLK:
		m |= fs.ModeDevice
	}
	if mode&S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Info is a ready FileInfo built from a name and a Stat, for readers that do not need their own.
type Info struct {
	EntryName string
	St        Stat
}

func (i *Info) Name() string       { return i.EntryName }
func (i *Info) Size() int64        { return i.St.Size }
func (i *Info) Mode() fs.FileMode  { return FileMode(i.St.Mode) }
func (i *Info) ModTime() time.Time { return i.St.Mtime }
func (i *Info) IsDir() bool        { return i.St.Mode&S_IFMT == S_IFDIR }
func (i *Info) Sys() any           { return &i.St }

// Type returns the fs.FileMode type bits, for DirEntry implementations.
func (i *Info) Type() fs.FileMode { return i.Mode().Type() }

// Info returns itself, so an *Info is also an fs.DirEntry.
func (i *Info) Info() (fs.FileInfo, error) { return i, nil }

// StatOf returns the *Stat behind a FileInfo produced by this package's readers, or nil.
func StatOf(fi fs.FileInfo) *Stat {
	st, _ := fi.Sys().(*Stat)
	return st
}

// Volume states, as `vmdkmount list --json` reports them in "state".
const (
	StateClean      = "clean"      // cleanly unmounted, or nothing to replay
	StateReplayed   = "replayed"   // a journal or log was replayed in memory; the tree shows the result
	StateDirty      = "dirty"      // needs a replay that was not done; Detail says why
	StateHibernated = "hibernated" // a hibernated or Fast-Startup Windows volume
)

// VolumeState is what a reader found about its volume's consistency when it opened it.
type VolumeState struct {
	State  string `json:"state"`
	Detail string `json:"state_detail,omitempty"`
}

// StateReporter is implemented by readers that know whether their volume was cleanly unmounted.
type StateReporter interface {
	VolumeState() VolumeState
}
