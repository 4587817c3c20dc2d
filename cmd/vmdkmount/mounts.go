package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/vddk"
)

// fsType is the type our mounts show in /proc/mounts: FUSE with the subtype vmdkmount.
const fsType = "fuse.vmdkmount"

// activeMount is one of our mounts, as /proc/self/mountinfo shows it.
type activeMount struct {
	Mountpoint string `json:"mountpoint"`
	Disks      string `json:"disks"` // the source column: the disks' paths (or -o fsname=)
	Options    string `json:"options"`
}

// ourMounts reads the vmdkmount mounts of this mount namespace.
func ourMounts() ([]activeMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []activeMount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
		before, after, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f1, f2 := strings.Fields(before), strings.Fields(after)
		if len(f1) < 6 || len(f2) < 2 || f2[0] != fsType {
			continue
		}
		out = append(out, activeMount{Mountpoint: unescapeMount(f1[4]), Disks: unescapeMount(f2[1]), Options: f1[5]})
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space) of /proc's mount tables.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// refuseStacking fails when dir already holds one of our mounts: a second mount on top would hide the
// first, which then could only be unmounted after the second.
func refuseStacking(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	mounts, err := ourMounts()
	if err != nil {
		return nil // no mount table to read: the kernel's own checks remain
	}
	for _, m := range mounts {
		if m.Mountpoint == abs {
			return fmt.Errorf("%s is already a vmdkmount mount (of %s): unmount it first (vmdkmount umount %s)", dir, m.Disks, dir)
		}
	}
	return nil
}

// listMounts prints our active mounts, as `vmware-mount -L` does.
func listMounts(c *cli.Context, asJSON bool) error {
	mounts, err := ourMounts()
	if err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	if asJSON {
		if mounts == nil {
			mounts = []activeMount{}
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Mounts []activeMount `json:"mounts"`
		}{mounts})
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MOUNTPOINT\tDISKS\tOPTIONS")
	for _, m := range mounts {
		fmt.Fprintf(w, "%s\t%s\t%s\n", m.Mountpoint, m.Disks, m.Options)
	}
	return w.Flush()
}

// fsName is the source column of our mounts in /proc/mounts: -o fsname=, or the disks' absolute paths
// and network disks' URIs (joined by ":"), which `vmdkmount list --mounts` shows.
func fsName(paths []string, o mountOpts) string {
	if o.fsName != "" {
		return o.fsName
	}
	abs := make([]string, len(paths))
	for i, p := range paths {
		abs[i] = p
		if vddk.IsRemote(p) {
			abs[i] = vddk.RedactURI(p) // the URI as given, less its user name and password
		} else if a, err := filepath.Abs(p); err == nil {
			abs[i] = a
		}
	}
	return strings.Join(abs, ":")
}
