package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes"
)

// mountOpts is what -o says.
type mountOpts struct {
	allowOther bool
	uid, gid   uint32
	uidSet     bool
	rw         bool
	fsName     string // the source column of /proc/mounts (default: the disks' paths)
	volume     string // volume=ID, the fstab spelling of --volume
}

// ignoredOptions are the -o words that change nothing here, each with the reason, so an fstab line
// written for another filesystem mounts instead of failing.
var ignoredOptions = map[string]string{
	"defaults": "fstab", "auto": "fstab", "noauto": "fstab", "user": "fstab", "users": "fstab", "nouser": "fstab",
	"owner": "fstab", "group": "fstab", "_netdev": "fstab", "nofail": "fstab",
	"nosuid": "always in force", "nodev": "always in force", "default_permissions": "always in force",
	"suid": "the mount stays nosuid", "dev": "the mount stays nodev", "exec": "the kernel's default", "noexec": "not needed",
	"atime": "the source's times are never touched", "noatime": "the source's times are never touched",
	"relatime": "the source's times are never touched", "strictatime": "the source's times are never touched",
	"nodiratime": "the source's times are never touched", "lazytime": "the source's times are never touched",
	"nolazytime": "the source's times are never touched",
	"sync":       "read-only data", "async": "read-only data", "dirsync": "read-only data",
	"nonempty":     "FUSE 3 mounts over non-empty folders anyway",
	"kernel_cache": "the kernel already keeps the pages of data that cannot change",
	"silent":       "mount(8)'s verbosity", "loud": "mount(8)'s verbosity",
}

// parseO reads the -o lists. helper is true when mount(8) called us as mount.vmdk: it adds "rw" whenever
// the fstab line does not say "ro", so there "rw" cannot ask for a redo log.
func parseO(list []string, helper bool) (mountOpts, error) {
	o := mountOpts{uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	for _, item := range list {
		for _, opt := range strings.Split(item, ",") {
			opt = strings.TrimSpace(opt)
			key, val, hasVal := strings.Cut(opt, "=")
			if why, ok := ignoredOptions[key]; ok {
				// mount(8) passes user=NAME to the helper for a user's mount of a "user" fstab line.
				if hasVal && key != "user" {
					return o, fmt.Errorf("-o %s: %s takes no value", opt, key)
				}
				slog.Debug("mount option ignored", "option", key, "why", why)
				continue
			}
			if strings.HasPrefix(key, "x-") || key == "comment" {
				continue // x-systemd.*, x-gvfs-*: for other programs reading fstab
			}
			switch key {
			case "":
			case "allow_other":
				o.allowOther = true
			case "allow_root":
				// The kernel knows only allow_other; libfuse filters for root in its library. Root owning
				// the mount, as through fstab, needs nothing more.
				if os.Geteuid() != 0 {
					return o, fmt.Errorf("-o allow_root: not supported for a mount you own as a user: use allow_other")
				}
			case "ro":
				o.rw = false
			case "rw":
				o.rw = !helper
			case "uid", "gid", "max_read":
				n, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					return o, fmt.Errorf("-o %s=%q is not a number", key, val)
				}
				switch key {
				case "uid":
					o.uid, o.uidSet = uint32(n), true
				case "gid":
					o.gid, o.uidSet = uint32(n), true
				}
				// max_read: requests are sized to be spliced from the host file; a limit is not needed.
			case "fsname":
				if val == "" {
					return o, fmt.Errorf("-o fsname= needs a name")
				}
				o.fsName = val
			case "subtype":
				// The type stays fuse.vmdkmount: it is how `vmdkmount list --mounts` and the refusal to
				// stack mounts recognise ours.
			case "volume":
				if val == "" {
					return o, fmt.Errorf("-o volume= needs a volume id (see vmdkmount list)")
				}
				o.volume = val
			default:
				return o, fmt.Errorf("-o %s: unknown option", opt)
			}
		}
	}
	return o, nil
}

// noSuchVolume explains why --volume ID mounts nothing, naming the ids that would.
func noSuchVolume(set *volumes.Set, id string) error {
	var trees []string
	found := false
	for _, v := range set.Volumes() {
		if v.ID == id {
			found = true
		}
		if v.HasTree() {
			trees = append(trees, v.ID)
		}
	}
	if found {
		return fmt.Errorf("volume %s has no readable file tree (see vmdkmount list)", id)
	}
	if len(trees) == 0 {
		return fmt.Errorf("no volume %s, and no volume with a readable file tree on these disks", id)
	}
	return fmt.Errorf("no volume %s: the volumes with a file tree are %s", id, strings.Join(trees, ", "))
}
