package volumes

import (
	"fmt"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/btrfs"
	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// assembleBtrfs joins the devices of a multi-device Btrfs found in the set (the same filesystem
// UUID): the first stands for the filesystem and reads through all of them; the others become
// containers, as LVM PVs do.
func (s *Set) assembleBtrfs() {
	groups := map[string][]*Volume{}
	var order []string
	for _, v := range s.all {
		if v.Filesystem.Type != "btrfs" || v.dev == nil || v.Container || v.Filesystem.UUID == "" {
			continue
		}
		if _, ok := groups[v.Filesystem.UUID]; !ok {
			order = append(order, v.Filesystem.UUID)
		}
		groups[v.Filesystem.UUID] = append(groups[v.Filesystem.UUID], v)
	}
	for _, u := range order {
		g := groups[u]
		if n, err := btrfs.DeviceCount(g[0].dev, g[0].dev.Size()); err == nil && n > uint64(len(g)) {
			name := u
			if l := g[0].Filesystem.Label; l != "" {
				name += fmt.Sprintf(" (%q)", l)
			}
			s.problemf("btrfs %s: %d of its %d devices in the set; it reads degraded, from the copies and parity left", name, len(g), n)
		}
		if len(g) < 2 {
			continue
		}
		for _, v := range g {
			g[0].btrfsDevs = append(g[0].btrfsDevs, v.dev)
			if v != g[0] {
				v.Container = true
				g[0].Extents = append(g[0].Extents, v.Extents...)
			}
		}
	}
}

// openBtrfs opens a Btrfs volume with the other devices of its filesystem.
func openBtrfs(v *Volume, _ TreeOptions) (fsys.FS, error) {
	devs := v.btrfsDevs
	if len(devs) == 0 {
		devs = []layout.Dev{v}
	}
	bd := make([]btrfs.Device, len(devs))
	for i, d := range devs {
		bd[i] = btrfs.Device{R: d, Size: d.Size()}
	}
	return btrfs.OpenDevices(bd)
}
