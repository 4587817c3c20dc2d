// Package treecmp is a test tool: it compares an fsys.FS (our reader) with a host directory (an
// independent reader's view of the same volume, such as the kernel's loop mount) entry by entry and
// reports every difference it finds, not just the first.
package treecmp

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Field names one compared property. Fields combine as a bit set in Options.Ignore.
type Field uint32

const (
	Presence Field = 1 << iota // the name exists on only one side
	Type                       // file type (regular, directory, symlink, device, fifo, socket)
	Size                       // size of a non-directory
	DirSize                    // size of a directory (formats disagree on what it means)
	Blocks                     // allocated bytes (st_blocks*512)
	Perm                       // permission bits 0o777
	Special                    // setuid, setgid and sticky bits
	Uid
	Gid
	Nlink
	Ino // Stat.Ino equal to the host inode number (only with Options.CompareIno)
	Links
	Mtime
	Atime
	Ctime
	Btime
	Target  // symlink target
	Xattr   // extended attribute names and values
	Rdev    // device number of a character or block device
	Content // bytes of a regular file, read sequentially, at offsets and by Seek
	Listing // ReadDir's own consistency: sorted, entry types matching Lstat
	Error   // a call on our side failed where the host succeeded
)

var fieldNames = []string{"presence", "type", "size", "dirsize", "blocks", "perm", "special", "uid", "gid",
	"nlink", "ino", "links", "mtime", "atime", "ctime", "btime", "target", "xattr", "rdev", "content",
	"listing", "error"}

func (f Field) String() string {
	var names []string
	for i, n := range fieldNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Times is the set of the four timestamps, for Options.Ignore.
const Times = Mtime | Atime | Ctime | Btime

// Options switch off what a format does not carry and adapt names between the two views.
type Options struct {
	// Ignore lists fields not to compare (for example Uid|Gid|Ctime for FAT).
	Ignore Field
	// CompareIno also requires Stat.Ino to equal the host's inode number (ext4, XFS). Link grouping
	// (paths sharing an inode on one side share it on the other) is always checked unless Links is ignored.
	CompareIno bool
	// TimeGranularity truncates both sides' times before comparing (0: exact to the nanosecond).
	TimeGranularity time.Duration
	// IgnorePath reports paths (slash-separated, relative, "." for the root) to leave out entirely,
	// with their subtree. Nil ignores nothing.
	IgnorePath func(name string) bool
	// MapXattr turns a host attribute name into ours; keep=false drops it from the comparison. Nil keeps
	// every name unchanged.
	MapXattr func(host string) (ours string, keep bool)
	// MaxDiffs stops the walk after this many differences (0: 10000), so a broken reader cannot flood a test.
	MaxDiffs int
}

// Diff is one difference between our tree and the host's.
type Diff struct {
	Path  string // relative path, "." for the root
	Field Field
	Ours  string
	Host  string
}

func (d Diff) String() string {
	return fmt.Sprintf("%s: %s: ours=%s host=%s", d.Path, d.Field, d.Ours, d.Host)
}

// Compare walks hostDir and ours together and returns every difference, in walk order.
func Compare(ours fsys.FS, hostDir string, opt Options) []Diff {
	c := &comparer{ours: ours, host: hostDir, opt: opt, hostIno: map[string]inodeKey{}, oursIno: map[string]uint64{}}
	if c.opt.MaxDiffs <= 0 {
		c.opt.MaxDiffs = 10000
	}
	c.entry(".")
	c.checkLinks()
	return c.diffs
}

type inodeKey struct{ dev, ino uint64 }

type comparer struct {
	ours    fsys.FS
	host    string
	opt     Options
	diffs   []Diff
	hostIno map[string]inodeKey // path → host inode, for link grouping
	oursIno map[string]uint64   // path → our Stat.Ino
}

func (c *comparer) full() bool { return len(c.diffs) >= c.opt.MaxDiffs }

func (c *comparer) add(name string, f Field, ours, host any) {
	if c.opt.Ignore&f != 0 || c.full() {
		return
	}
	c.diffs = append(c.diffs, Diff{Path: name, Field: f, Ours: fmt.Sprint(ours), Host: fmt.Sprint(host)})
}

func (c *comparer) hostPath(name string) string {
	if name == "." {
		return c.host
	}
	return path.Join(c.host, name)
}

func (c *comparer) ignored(name string) bool {
	return name != "." && c.opt.IgnorePath != nil && c.opt.IgnorePath(name)
}

func (c *comparer) truncTime(t time.Time) time.Time {
	if c.opt.TimeGranularity > 0 {
		return t.Truncate(c.opt.TimeGranularity)
	}
	return t
}
