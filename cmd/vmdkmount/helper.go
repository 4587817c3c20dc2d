package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// helperName is the name mount(8) runs for fstab type "vmdk": /sbin/mount.vmdk, a link to vmdkmount.
// It is looked up in /sbin only, so it cannot be shadowed by libvmdk-utils' /usr/bin/vmdkmount.
const helperName = "mount.vmdk"

func isMountHelper(argv0 string) bool { return filepath.Base(argv0) == helperName }

// helperArgs turns mount(8)'s call "mount.vmdk SPEC DIR [-sfnv] [-N NS] [-t TYPE] [-o OPTS]" into
// vmdkmount's "vmdkmount --mount-helper -o OPTS SPEC DIR". It returns nil when there is nothing to do
// (-f, mount's fake mode).
func helperArgs(argv []string) ([]string, error) {
	var pos, opts []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 >= len(argv) {
				return nil, fmt.Errorf("%s: %s needs a value", helperName, a)
			}
			i++
			switch a {
			case "-o":
				opts = append(opts, argv[i])
			case "-N":
				return nil, fmt.Errorf("%s: -N (another mount namespace) is not supported", helperName)
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case a == "-f" || a == "--fake":
			return nil, nil
		case a == "-s" || a == "-n" || a == "-v" || a == "--no-mtab" || a == "--sloppy" || a == "--verbose":
			// sloppy, no mtab, verbose: nothing to change here
		case strings.HasPrefix(a, "-") && a != "-":
			return nil, fmt.Errorf("%s: unknown mount option %s", helperName, a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("%s: want SPEC DIR, got %q\nusage: %s DISK MOUNTPOINT [-o OPTIONS]", helperName, pos, helperName)
	}
	out := []string{"vmdkmount", "--mount-helper"}
	for _, o := range opts {
		out = append(out, "-o", o)
	}
	return append(out, "--", pos[0], pos[1]), nil
}
