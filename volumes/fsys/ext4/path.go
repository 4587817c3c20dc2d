package ext4

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var (
	errNotDir        = errors.New("not a directory")
	errDirLoop       = errors.New("directory loop or second link to a directory (its \"..\" names another parent)")
	errSymlinkInPath = errors.New("symbolic link in the directory part")
)

// walk finds the inode of name without following any symlink; a symlink before the last component
// gives errSymlinkInPath, so the caller can resolve the path first.
func (f *FS) walk(name string) (*inode, error) {
	if !fs.ValidPath(name) {
		return nil, fs.ErrInvalid
	}
	cur, err := f.inode(rootIno)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return cur, nil
	}
	chain := []uint32{rootIno}
	parts := strings.Split(name, "/")
	for i, part := range parts {
		if cur.typ() == fsys.S_IFLNK {
			return nil, errSymlinkInPath
		}
		if !cur.isDir() {
			return nil, errNotDir
		}
		ent, err := f.lookupEntry(cur, part)
		if err != nil {
			return nil, err
		}
		parent := cur.ino
		if cur, err = f.inode(ent.ino); err != nil {
			return nil, err
		}
		if cur.isDir() {
			// A directory has one parent, named by its "..": reaching it from elsewhere (a hard link to
			// a directory, made by damage or by hand) could turn a walk into a loop or an exponential tree.
			if slices.Contains(chain, cur.ino) {
				return nil, fmt.Errorf("%s: %w", path.Join(parts[:i+1]...), errDirLoop)
			}
			dotdot, err := f.parentOf(cur)
			if err != nil {
				return nil, err
			}
			// A ".." lost to a damaged first block is no evidence either way (the kernel lists such a
			// directory); the chain still stops loops.
			if dotdot != parent && dotdot != 0 {
				return nil, fmt.Errorf("%s: %w", path.Join(parts[:i+1]...), errDirLoop)
			}
			chain = append(chain, cur.ino)
		}
	}
	return cur, nil
}

// lookupEntry finds one name in directory dir: in its cached listing; when it is large and not cached,
// through its hash index, or, when its listing would not stay in the cache, by a scan from where the
// last lookup in it stopped; else by reading (and caching) the whole directory.
func (f *FS) lookupEntry(dir *inode, name string) (dirent, error) {
	d, ok := f.dirs.get(dir.ino)
	if !ok && dir.st.Size > htreeMinBlocks*int64(f.sb.blockSize) {
		// A directory found through the index may be a second name of one listed earlier: only the
		// whole listing tells, so directories fall through to it.
		ent, found, usable := f.htreeLookup(dir, name)
		if !usable && f.dirs.tooBig(dir.st.Size/scanRecBytes) {
			// An error here shows again, and is reported, when the whole listing is read below.
			var err error
			ent, found, err = f.scanLookup(dir, name)
			usable = err == nil
		}
		if usable {
			if !found {
				return dirent{}, fs.ErrNotExist
			}
			if ent.ftype != 2 && !f.namesDir(ent) {
				return ent, nil
			}
		}
	}
	if !ok {
		var err error
		if d, err = f.directory(dir); err != nil {
			return dirent{}, err
		}
	}
	return d.lookup(name)
}

// lookup finds name's inode, following symlinks in the directory part always and in the last
// component when follow is set; links are resolved inside the volume.
func (f *FS) lookup(op, name string, follow bool) (*inode, error) {
	in, err := f.walk(name)
	if err == nil && (!follow || in.typ() != fsys.S_IFLNK) {
		return in, nil
	}
	if err != nil && !errors.Is(err, errSymlinkInPath) {
		return nil, pathErr(op, name, err)
	}
	resolved, err := fsys.Resolve(rawLinker{f}, name, follow)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	if in, err = f.walk(resolved); err != nil {
		return nil, pathErr(op, name, err)
	}
	return in, nil
}

// rawLinker gives fsys.Resolve Lstat and ReadLink on paths with no symlink before the last component.
type rawLinker struct{ f *FS }

func (l rawLinker) Lstat(name string) (fs.FileInfo, error) {
	in, err := l.f.walk(name)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	return infoFor(name, in), nil
}

func (l rawLinker) ReadLink(name string) (string, error) {
	in, err := l.f.walk(name)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return l.f.linkTarget(name, in)
}

func infoFor(name string, in *inode) *fsys.Info {
	base := path.Base(name)
	if name == "." {
		base = "."
	}
	return &fsys.Info{EntryName: base, St: in.st}
}

// linkTarget reads a symlink's target: from i_block for a fast link, else from its data.
func (f *FS) linkTarget(name string, in *inode) (string, error) {
	if in.typ() != fsys.S_IFLNK {
		return "", pathErr("readlink", name, fs.ErrInvalid)
	}
	size := in.st.Size
	if size <= 0 || size >= int64(f.sb.blockSize) {
		return "", pathErr("readlink", name, fmt.Errorf("symlink of %d bytes: %w", size, errCorrupt))
	}
	if in.flags&flagEncrypt != 0 {
		return "", pathErr("readlink", name, fmt.Errorf("inode %d: %w", in.ino, errEncrypted))
	}
	if f.isFastSymlink(in) {
		if size >= int64(len(in.block)) {
			return "", pathErr("readlink", name, fmt.Errorf("fast symlink of %d bytes: %w", size, errCorrupt))
		}
		return string(in.block[:size]), nil
	}
	d, err := f.dataOf(in)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	buf := make([]byte, size)
	if _, err := d.ReadAt(buf, 0); err != nil {
		return "", pathErr("readlink", name, err)
	}
	return string(buf), nil
}

// isFastSymlink follows the kernel: a link with no data blocks of its own (an xattr block does not
// count) keeps its target in i_block.
func (f *FS) isFastSymlink(in *inode) bool {
	if in.flags&flagInlineData != 0 {
		return false
	}
	if in.flags&flagEAInode != 0 {
		return in.st.Size < int64(len(in.block))
	}
	ea := int64(0)
	if in.fileACL != 0 {
		ea = int64(f.sb.clusterSize)
	}
	return in.st.AllocatedSize-ea == 0
}
