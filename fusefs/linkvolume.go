package fusefs

import (
	"path"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// otherVolumeLink returns the target of the volume-rooted symlink p when it names a volume that
// Layout.LinkVolume finds among the mount's trees: the path under that tree's folder, spelt as the
// tree stores it when the tree finds names as its guest does (fsys.PathFolder).
func (n *treeNode) otherVolumeLink(p string) (string, bool) {
	lv, ok := n.tree.(fsys.LinkVolumer)
	if !ok || n.layout.LinkVolume == nil || n.dir == "" {
		return "", false
	}
	vol, rel, ok := lv.LinkVolume(p)
	if !ok {
		return "", false
	}
	to, ok := n.layout.LinkVolume(n.dir, vol)
	if !ok {
		return "", false
	}
	for _, t := range n.layout.Trees {
		if t.Name != to {
			continue
		}
		if f, ok := t.Tree.(fsys.PathFolder); ok {
			if q, ok := f.FoldPath(rel); ok {
				rel = q
			}
		}
		return path.Join(n.layout.mountPoint, to, rel), true
	}
	return "", false
}
