package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/graft"
	"github.com/vmdkmount/vmdkmount/volumes/inspect"
)

// guestTree is what -i mounts (as guestmount -i): the OS's volumes as the guest sees them, with raw/
// beside them. With several OSes the first is taken, or the one --root names.
func guestTree(c *cli.Context, set *volumes.Set, raws []fusefs.RawSource, topts volumes.TreeOptions, t time.Time) (fsys.FS, io.Closer, error) {
	trees := inspect.NewTrees(set, topts)
	oses := inspect.Inspect(trees)
	if len(oses) == 0 {
		trees.Close()
		return nil, nil, fmt.Errorf("-i: no operating system found on these disks (see vmdkmount inspect)")
	}
	o := oses[0]
	if id := c.String("root"); id != "" {
		found := false
		for _, x := range oses {
			if x.Root == id {
				o, found = x, true
			}
		}
		if !found {
			trees.Close()
			return nil, nil, fmt.Errorf("--root %s: no operating system there; roots: %s", id, roots(oses))
		}
	} else if len(oses) > 1 {
		// Until the mount is up, a daemon's standard error is still the caller's.
		fmt.Fprintf(c.App.ErrWriter, "vmdkmount: %d operating systems found (%s); showing %s, --root picks another\n",
			len(oses), roots(oses), o.Root)
	}
	files := make([]graft.File, 0, len(raws))
	for _, r := range raws {
		files = append(files, graft.File{Name: r.Name, R: r.R, Size: r.Size})
	}
	raw, err := graft.NewFiles(files, t)
	if err != nil {
		trees.Close()
		return nil, nil, err
	}
	view, err := inspect.GuestView(trees, o, []graft.Mount{{Path: "raw", Tree: raw}}, t)
	if err != nil {
		trees.Close()
		return nil, nil, err
	}
	return view, trees, nil
}

func roots(oses []inspect.OS) string {
	var r []string
	for _, o := range oses {
		r = append(r, o.Root+" ("+o.Type+")")
	}
	return strings.Join(r, ", ")
}
