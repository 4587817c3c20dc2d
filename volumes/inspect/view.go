package inspect

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/graft"
)

// GuestView composes the OS's volumes as the guest sees them (guestmount -i): a Windows guest's drives
// as C, D … side by side; a Unix guest's root with every fstab mount in place. extra trees are grafted
// too (a mount's raw/ folder). A volume whose tree cannot be opened is left out and logged. t stamps
// the made-up directories.
func GuestView(trees *Trees, o OS, extra []graft.Mount, t time.Time) (fsys.FS, error) {
	var base fsys.FS
	var mounts []graft.Mount
	add := func(at, id string) {
		tr, err := trees.Tree(id)
		if err != nil {
			slog.Warn("guest view: volume left out", "volume", id, "at", at, "err", err)
			return
		}
		mounts = append(mounts, graft.Mount{Path: at, Tree: tr})
	}
	if o.Type == "windows" {
		letters := sortedKeys(o.DriveMappings)
		hasRoot := false
		for _, l := range letters {
			hasRoot = hasRoot || o.DriveMappings[l] == o.Root
		}
		if !hasRoot {
			// MountedDevices names no letter for the system volume: it is C: to Windows anyway.
			if _, taken := o.DriveMappings["C"]; !taken {
				add("C", o.Root)
			}
		}
		for _, l := range letters {
			add(l, o.DriveMappings[l])
		}
	} else {
		var err error
		if base, err = trees.Tree(o.Root); err != nil {
			return nil, err
		}
		for _, mp := range sortedKeys(o.Mountpoints) {
			if mp != "/" {
				add(strings.TrimPrefix(mp, "/"), o.Mountpoints[mp])
			}
		}
	}
	g, err := graft.New(base, append(mounts, extra...), t)
	if err != nil {
		return nil, fmt.Errorf("guest view of %s: %w", o.Root, err)
	}
	return g, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
