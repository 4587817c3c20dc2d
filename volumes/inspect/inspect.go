// Package inspect finds the operating systems installed on a disk set, as VixMntapi_GetOsInfo and
// libguestfs's inspection do: for each OS root, its family, distribution, product name, version,
// architecture and host name, where Windows puts each drive letter and where Linux mounts each volume.
// It reads only the few files that say so (the registry hives SOFTWARE and SYSTEM, /etc/os-release,
// /etc/fstab, one ELF header…) through the volumes' file trees.
package inspect

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// OS is one operating system found, with libguestfs's inspection names in JSON.
type OS struct {
	Root         string `json:"root"` // the volume id of its root (C: for Windows)
	Type         string `json:"type"` // windows, linux, freebsd, netbsd, openbsd, macos
	Distro       string `json:"distro,omitempty"`
	ProductName  string `json:"product_name,omitempty"`
	MajorVersion int    `json:"major_version"`
	MinorVersion int    `json:"minor_version"`
	Arch         string `json:"arch,omitempty"` // x86_64, i386, aarch64…
	Hostname     string `json:"hostname,omitempty"`
	// BuildID is Windows's CurrentBuildNumber.
	BuildID string `json:"build_id,omitempty"`
	// EditionID and ProductVariant (InstallationType: Client, Server…) are Windows's.
	EditionID      string `json:"edition_id,omitempty"`
	ProductVariant string `json:"product_variant,omitempty"`
	// WindowsSystemRoot is the Windows folder as a path in the root volume, e.g. /Windows.
	WindowsSystemRoot string `json:"windows_systemroot,omitempty"`
	// WindowsCurrentControlSet is the SYSTEM hive's current control set, e.g. ControlSet001.
	WindowsCurrentControlSet string `json:"windows_current_control_set,omitempty"`
	// DriveMappings maps a Windows drive letter ("C") to a volume id of the set.
	DriveMappings map[string]string `json:"drive_mappings,omitempty"`
	// VolumeGUIDs maps a Windows volume GUID ("{B2B3B4B5-…}", as in \??\Volume{…} paths) to a
	// volume id of the set.
	VolumeGUIDs map[string]string `json:"-"`
	// Mountpoints maps a Linux or Unix mount point ("/", "/boot") to a volume id of the set.
	Mountpoints map[string]string `json:"mountpoints,omitempty"`
	// Problems lists what could not be read (a damaged hive, an fstab line naming no volume here).
	Problems []string `json:"problems,omitempty"`
}

// Trees opens each volume's file tree once and shares it between inspection and a guest view.
type Trees struct {
	set  *volumes.Set
	opts volumes.TreeOptions
	mu   sync.Mutex
	open map[string]fsys.FS
	errs map[string]error
}

// NewTrees prepares the trees of set; call Close when done.
func NewTrees(set *volumes.Set, opts volumes.TreeOptions) *Trees {
	return &Trees{set: set, opts: opts, open: map[string]fsys.FS{}, errs: map[string]error{}}
}

// Tree returns the file tree of the volume id, opening it at the first call.
func (t *Trees) Tree(id string) (fsys.FS, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.open[id]; ok {
		return tr, nil
	}
	if err, ok := t.errs[id]; ok {
		return nil, err
	}
	v, ok := t.set.Volume(id)
	if !ok {
		return nil, fmt.Errorf("inspect: no volume %q", id)
	}
	tr, err := v.OpenTree(t.opts)
	if err != nil {
		t.errs[id] = err
		return nil, err
	}
	t.open[id] = tr
	return tr, nil
}

// Set is the disk set the trees belong to.
func (t *Trees) Set() *volumes.Set { return t.set }

// Close closes every tree opened.
func (t *Trees) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first error
	for _, tr := range t.open {
		if err := tr.Close(); err != nil && first == nil {
			first = err
		}
	}
	clear(t.open)
	return first
}

// Inspect looks for an OS root on every volume of the set that has a file tree. The roots come in
// volume order. A volume whose tree cannot be opened is skipped (and logged).
func Inspect(t *Trees) []OS {
	var out []OS
	for _, v := range t.set.Volumes() {
		if !v.HasTree() {
			continue
		}
		tr, err := t.Tree(v.ID)
		if err != nil {
			slog.Info("inspect: volume skipped", "volume", v.ID, "err", err)
			continue
		}
		if os, ok := inspectWindows(t.set, v, tr); ok {
			out = append(out, os)
			continue
		}
		if os, ok := inspectUnix(t.set, v, tr); ok {
			out = append(out, os)
		}
	}
	return out
}

// Mountpoints returns, for each volume id, its in-guest mount points across the OSes found: drive
// letters as "C:" and Unix paths as they are.
func Mountpoints(oses []OS) map[string][]string {
	out := map[string][]string{}
	for _, o := range oses {
		for letter, id := range o.DriveMappings {
			out[id] = append(out[id], letter+":")
		}
		for mp, id := range o.Mountpoints {
			out[id] = append(out[id], mp)
		}
	}
	for _, l := range out {
		sort.Strings(l)
	}
	return out
}

// openFile opens a regular file of the tree for reads at offsets; the caller closes it.
func openFile(t fsys.FS, name string) (fsys.File, fs.FileInfo, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r, ok := f.(fsys.File)
	if !ok || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file", name)
	}
	return r, fi, nil
}

// readSmall reads a small text file of a tree; files over limit are refused.
func readSmall(t fsys.FS, name string, limit int64) ([]byte, error) {
	f, fi, err := openFile(t, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d expected", name, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	return nil, fmt.Errorf("%s: %w", name, err)
}

// exists tells whether name is in the tree (following links).
func exists(t fsys.FS, name string) bool {
	_, err := t.Stat(name)
	return err == nil
}

// findFold resolves name component by component, matching names case-insensitively when the exact
// name is absent (a Windows tree read by a case-sensitive reader, or an NTFS name in another case). It
// returns the path as stored.
func findFold(t fsys.FS, name string) (string, error) {
	cur := "."
	for _, part := range strings.Split(name, "/") {
		next := path.Join(cur, part)
		if _, err := t.Stat(next); err == nil {
			// The exact name exists; on a case-insensitive reader, take the stored spelling from a small
			// directory only (System32 holds thousands of entries).
			if cur == "." {
				if ents, err := t.ReadDir(cur); err == nil {
					for _, e := range ents {
						if strings.EqualFold(e.Name(), part) {
							next = path.Join(cur, e.Name())
							break
						}
					}
				}
			}
			cur = next
			continue
		}
		ents, err := t.ReadDir(cur)
		if err != nil {
			return "", err
		}
		found := false
		for _, e := range ents {
			if strings.EqualFold(e.Name(), part) {
				cur, found = path.Join(cur, e.Name()), true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("%s: %w", path.Join(cur, part), fs.ErrNotExist)
		}
	}
	return cur, nil
}
