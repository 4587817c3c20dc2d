package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/inspect"
)

var inspectCommand = &cli.Command{
	Name:      "inspect",
	Usage:     "find the operating systems of a disk set: type, distribution, version, arch, host name, drive letters and mount points",
	ArgsUsage: "DISK [DISK...]",
	Description: "Like virt-inspector and VixMntapi_GetOsInfo. The JSON form ({\"os\": [...]}) uses libguestfs's\n" +
		"inspection names: root, type, distro, product_name, major_version, minor_version, arch, hostname,\n" +
		"windows_systemroot, drive_mappings (letter → volume id), mountpoints (guest path → volume id).",
	Flags: append(cliutil.JSONFlags(),
		allowExternalFlag(),
	),
	Action: cmdInspect,
}

func cmdInspect(c *cli.Context) error {
	asJSON, err := cliutil.WantJSON(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		return cliutil.Usage(c, "inspect needs at least one DISK")
	}
	set, closer, err := volumes.OpenFiles(c.Args().Slice(),
		vddk.Options{AllowExternalPaths: c.Bool("allow-external-extents")}, volumes.Options{})
	if err != nil {
		return err
	}
	defer closer.Close()
	trees := inspect.NewTrees(set, volumes.TreeOptions{})
	defer trees.Close()
	oses := inspect.Inspect(trees)
	out := c.App.Writer
	if asJSON {
		if oses == nil {
			oses = []inspect.OS{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			OS []inspect.OS `json:"os"`
		}{oses})
	}
	if len(oses) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "no operating system found")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ROOT\tTYPE\tDISTRO\tPRODUCT\tVERSION\tARCH\tHOSTNAME\t")
	for _, o := range oses {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d.%d\t%s\t%s\t\n", o.Root, o.Type, o.Distro, o.ProductName,
			o.MajorVersion, o.MinorVersion, o.Arch, o.Hostname)
	}
	w.Flush()
	for _, o := range oses {
		var maps []string
		for _, l := range sortedKeys(o.DriveMappings) {
			maps = append(maps, fmt.Sprintf("%s: %s", l, o.DriveMappings[l]))
		}
		for _, mp := range sortedKeys(o.Mountpoints) {
			maps = append(maps, fmt.Sprintf("%s %s", mp, o.Mountpoints[mp]))
		}
		if len(maps) > 0 {
			fmt.Fprintf(out, "%s mounts: %s\n", o.Root, strings.Join(maps, ", "))
		}
		for _, p := range o.Problems {
			fmt.Fprintf(c.App.ErrWriter, "note: %s: %s\n", o.Root, p)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// guestMountpoints inspects the set for `list`: each volume's in-guest mount points ("C:", "/boot").
func guestMountpoints(set *volumes.Set) map[string][]string {
	trees := inspect.NewTrees(set, volumes.TreeOptions{})
	defer trees.Close()
	return inspect.Mountpoints(inspect.Inspect(trees))
}
