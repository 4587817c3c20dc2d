package main

import (
	"strings"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/inspect"
)

// linkVolumes is the mount's fusefs.Layout.LinkVolume: it finds the volume of the set that a
// Windows link names by drive letter or volume GUID, from the SYSTEM hive's MountedDevices of the
// Windows installs found by inspection. Inspection runs at the first such link, not at every mount.
func linkVolumes(set *volumes.Set, topts volumes.TreeOptions) func(from, volume string) (string, bool) {
	var once sync.Once
	var oses []inspect.OS
	return func(from, volume string) (string, bool) {
		once.Do(func() {
			trees := inspect.NewTrees(set, topts)
			oses = inspect.Inspect(trees)
			trees.Close()
		})
		return linkVolume(oses, from, volume)
	}
}

// linkVolume resolves volume ("D:", "Volume{GUID}") as seen from the volume id from: through the
// Windows installs that give from a letter (or boot from it), or the only one found.
func linkVolume(oses []inspect.OS, from, volume string) (string, bool) {
	var windows, mine []inspect.OS
	for _, o := range oses {
		if o.Type != "windows" {
			continue
		}
		windows = append(windows, o)
		if o.Root == from || hasVolume(o.DriveMappings, from) {
			mine = append(mine, o)
		}
	}
	if len(mine) == 0 && len(windows) == 1 {
		mine = windows
	}
	v := strings.ToUpper(volume)
	for _, o := range mine {
		if guid, ok := strings.CutPrefix(v, "VOLUME"); ok {
			if id, ok := o.VolumeGUIDs[guid]; ok {
				return id, true
			}
			continue
		}
		if len(v) != 2 || v[1] != ':' {
			continue
		}
		if id, ok := o.DriveMappings[v[:1]]; ok {
			return id, true
		}
		// MountedDevices may name no letter for the system volume: it is C: to Windows anyway.
		if v == "C:" && !hasVolume(o.DriveMappings, o.Root) {
			return o.Root, true
		}
	}
	return "", false
}

func hasVolume(m map[string]string, id string) bool {
	for _, v := range m {
		if v == id {
			return true
		}
	}
	return false
}
