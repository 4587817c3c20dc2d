package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// listedVolume is one row of `vmdkmount list --json`.
type listedVolume struct {
	ID         string                 `json:"id"`
	Kind       volumes.Kind           `json:"kind"`
	Disk       int                    `json:"disk"`
	Start      int64                  `json:"start"`
	Size       int64                  `json:"size"`
	Type       string                 `json:"type"`
	Filesystem string                 `json:"filesystem,omitempty"`
	Label      string                 `json:"label,omitempty"`
	UUID       string                 `json:"uuid,omitempty"`
	Tree       bool                   `json:"tree"`              // a file tree is mounted for it
	NoTree     string                 `json:"no_tree,omitempty"` // why not, for a recognised filesystem
	Container  bool                   `json:"container,omitempty"`
	Incomplete bool                   `json:"incomplete,omitempty"`
	Reason     string                 `json:"reason,omitempty"`
	Extents    []volumes.Extent       `json:"extents,omitempty"`
	Partition  *volumes.PartitionInfo `json:"partition,omitempty"`
	LVM        *volumes.LVMInfo       `json:"lvm,omitempty"`
	LDM        *volumes.LDMInfo       `json:"ldm,omitempty"`
	MD         *volumes.MDInfo        `json:"md,omitempty"`
	// Mountpoints are the volume's in-guest mount points: drive letters ("C:") and Unix paths.
	Mountpoints []string `json:"mountpoints,omitempty"`

	// The state and state_detail of every volume with a file tree (nil for the others).
	*fsys.VolumeState
}

func cmdList(c *cli.Context) error {
	asJSON, err := cliutil.WantJSON(c)
	if err != nil {
		return err
	}
	if c.Bool("mounts") {
		if c.NArg() > 0 {
			return cliutil.Usage(c, "list --mounts takes no DISK")
		}
		return listMounts(c, asJSON)
	}
	if c.NArg() == 0 {
		return cliutil.Usage(c, "list needs at least one DISK (or --mounts)")
	}
	set, closer, err := volumes.OpenFiles(c.Args().Slice(),
		vddk.Options{AllowExternalPaths: c.Bool("allow-external-extents")},
		volumes.Options{SectorSize: c.Int("sector-size"), NoReplay: c.Bool("no-replay")})
	if err != nil {
		return err
	}
	defer closer.Close()
	vols := set.Volumes()
	if c.Bool("all") {
		vols = set.All()
	}
	rows := make([]listedVolume, 0, len(vols))
	var mounts map[string][]string
	if asJSON {
		mounts = guestMountpoints(set)
	}
	for _, v := range vols {
		why := ""
		if !v.HasTree() && v.Filesystem.Type != "" && !v.Container && !v.Incomplete {
			why = v.Filesystem.Type + " has no reader here: raw access only"
		}
		row := listedVolume{Tree: v.HasTree(), NoTree: why,
			ID: v.ID, Kind: v.Kind, Disk: v.Disk, Start: v.Offset, Size: v.Size(), Type: typeName(v),
			Filesystem: v.Filesystem.Type, Label: v.Filesystem.Label, UUID: v.Filesystem.UUID,
			Container: v.Container, Incomplete: v.Incomplete, Reason: v.Reason,
			Extents: v.Extents, Partition: v.Partition, LVM: v.LVM, LDM: v.LDM, MD: v.MD, Mountpoints: mounts[v.ID],
		}
		row.VolumeState, row.Tree, row.NoTree = treeState(v, row.Tree, row.NoTree)
		rows = append(rows, row)
	}
	out := c.App.Writer
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Volumes  []listedVolume `json:"volumes"`
			Problems []string       `json:"problems,omitempty"`
		}{rows, set.Problems()})
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTART\tSIZE\tTYPE\tFILESYSTEM\tLABEL\tSTATE\t")
	for _, r := range rows {
		start := fmt.Sprint(r.Start)
		if r.Kind == volumes.KindLVM || r.Kind == volumes.KindLDM || r.Kind == volumes.KindMD {
			start = "-"
		}
		fs := r.Filesystem
		switch {
		case r.Incomplete:
			fs = "(incomplete: " + r.Reason + ")"
		case r.NoTree != "":
			fs += " (raw only)"
		}
		state := ""
		if r.VolumeState != nil {
			state = r.State
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.ID, start, r.Size, r.Type, fs, r.Label, state)
	}
	w.Flush()
	for _, r := range rows {
		if r.VolumeState != nil && r.State != fsys.StateClean {
			fmt.Fprintf(c.App.ErrWriter, "note: %s\n", stateLine(r.ID, r.State, r.Detail))
		}
	}
	for _, p := range set.Problems() {
		fmt.Fprintln(c.App.ErrWriter, "note:", p)
	}
	return nil
}

func typeName(v *volumes.Volume) string {
	switch {
	case v.Partition != nil && v.Partition.TypeName != "":
		if v.Partition.Scheme == "mbr" {
			return fmt.Sprintf("%s (0x%02x)", v.Partition.TypeName, v.Partition.TypeID)
		}
		return v.Partition.TypeName
	case v.LDM != nil:
		return "LDM " + v.LDM.Layout
	case v.LVM != nil:
		return "LVM " + strings.Join(v.LVM.Segments, "+")
	case v.MD != nil:
		return strings.TrimSpace("md " + v.MD.Level + " " + v.MD.Layout)
	}
	return string(v.Kind)
}

// treeState opens the volume's tree to learn its state (a journal replay happens there); a tree that
// does not open is shown raw only, as the mount shows it.
func treeState(v *volumes.Volume, tree bool, noTree string) (*fsys.VolumeState, bool, string) {
	if !tree {
		return nil, tree, noTree
	}
	t, err := v.OpenTree(volumes.TreeOptions{})
	if err != nil {
		return nil, false, err.Error()
	}
	defer t.Close()
	st := volumes.State(t)
	return &st, tree, noTree
}

// stateLine is how a volume that is not clean is announced on standard error.
func stateLine(id, state, detail string) string {
	if detail == "" {
		return fmt.Sprintf("volume %s is %s", id, state)
	}
	return fmt.Sprintf("volume %s is %s: %s", id, state, detail)
}
