package fusefs

import (
	"context"
	"hash/fnv"
	iofs "io/fs"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Named data streams (fsys.StreamFS) appear as FILE:STREAM: looked up by that name always, and listed
// beside their file with Layout.ListStreams. Such a node is a read-only regular file whose path is its
// owner's, with the stream name set.

// streamIno numbers a stream's node apart from every entry's: the owner's number with a hash of the
// stream name in bits 32-46 and bit 47 set (guest numbers stay below; the volume sits above).
func streamIno(owner uint64, stream string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return owner&(1<<32-1) | uint64(h.Sum32()&0x7FFF)<<32 | 1<<47
}

// streamStat is a stream's attributes: its owner's owner and times, a regular file of its size.
func streamStat(owner *fsys.Stat, s fsys.Stream) fsys.Stat {
	st := *owner
	st.Ino = streamIno(owner.Ino, s.Name)
	st.Mode = syscall.S_IFREG | owner.Mode&0o777
	st.Nlink = 1
	st.Rdev = 0
	st.Size = s.Size
	st.AllocatedSize = (s.Size + 511) &^ 511
	return st
}

// lookupStream finds FILE:STREAM in n; ok is false when name is no such stream.
func (n *treeNode) lookupStream(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, bool) {
	sfs, isStreams := n.tree.(fsys.StreamFS)
	file, stream, found := strings.Cut(name, ":")
	if !isStreams || !found || file == "" || stream == "" {
		return nil, false
	}
	p := n.child(file)
	fi, err := n.tree.Lstat(p)
	if err != nil {
		return nil, false
	}
	owner := fsys.StatOf(fi)
	list, err := sfs.ListStreams(p)
	if owner == nil || err != nil {
		return nil, false
	}
	for _, s := range list {
		if s.Name == stream {
			st := streamStat(owner, s)
			return n.newStreamChild(ctx, p, stream, &st, out), true
		}
	}
	return nil, false
}

func (n *treeNode) newStreamChild(ctx context.Context, owner, stream string, st *fsys.Stat, out *fuse.EntryOut) *fs.Inode {
	n.fill(st, &out.Attr)
	c := newTreeNode(n, owner, st)
	c.stream = stream
	return n.NewInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFREG, Ino: out.Attr.Ino})
}

// streamEntry is a listed FILE:STREAM entry.
type streamEntry struct {
	fi            fsys.Info
	owner, stream string // the owner's path and the stream's name
}

func (e *streamEntry) Name() string                 { return e.fi.EntryName }
func (e *streamEntry) IsDir() bool                  { return false }
func (e *streamEntry) Type() iofs.FileMode          { return 0 }
func (e *streamEntry) Info() (iofs.FileInfo, error) { return &e.fi, nil }

// withStreams adds after each entry of a listing the entries of its named streams.
func (n *treeNode) withStreams(ents []iofs.DirEntry) []iofs.DirEntry {
	sfs, ok := n.tree.(fsys.StreamFS)
	if !ok {
		return ents
	}
	out := make([]iofs.DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, e)
		fi, err := e.Info()
		if err != nil || e.Type()&iofs.ModeSymlink != 0 {
			continue
		}
		owner := fsys.StatOf(fi)
		p := n.child(e.Name())
		list, err := sfs.ListStreams(p)
		if owner == nil || err != nil {
			continue
		}
		for _, s := range list {
			out = append(out, &streamEntry{fi: fsys.Info{EntryName: e.Name() + ":" + s.Name, St: streamStat(owner, s)}, owner: p, stream: s.Name})
		}
	}
	return out
}

// openStream opens the stream a stream node shows.
func (n *treeNode) openStream() (fsys.File, syscall.Errno) {
	sfs, ok := n.tree.(fsys.StreamFS)
	if !ok {
		return nil, syscall.ENOENT
	}
	f, err := sfs.OpenStream(n.path, n.stream)
	if err != nil {
		return nil, errno(err)
	}
	return f, 0
}
