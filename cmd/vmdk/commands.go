package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/vddk/nbd"
)

func cmdInfo(c *cli.Context) error {
	asJSON, err := cliutil.WantJSON(c)
	if err != nil {
		return err
	}
	if nbd.IsURI(c.Args().First()) {
		return infoNBD(c, asJSON)
	}
	d, err := openDisk(c)
	if err != nil {
		return err
	}
	defer d.Close()
	inf := d.Info()
	allocated, err := allocatedBytes(d)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if asJSON {
		actual := fillActualSizes(&inf)
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			vddk.Info
			ActualSize int64             `json:"actual_size"` // bytes the top link's files take on the host
			Allocated  int64             `json:"allocated"`   // bytes stored anywhere in the chain
			Metadata   map[string]string `json:"metadata"`
		}{inf, actual, allocated, d.Metadata()})
	}
	w := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	fmt.Fprintf(w, "image:\t%s\n", inf.Path)
	fmt.Fprintf(w, "file format:\t%s\n", inf.Format)
	fmt.Fprintf(w, "virtual size:\t%s (%d bytes, %d sectors)\n", humanSize(inf.Capacity), inf.Capacity, inf.Sectors)
	fmt.Fprintf(w, "disk size:\t%s\n", humanSize(fillActualSizes(&inf)))
	fmt.Fprintf(w, "allocated:\t%s (%d bytes)\n", humanSize(allocated), allocated)
	fmt.Fprintf(w, "create type:\t%s (%s)\n", inf.CreateType, inf.Kind)
	if inf.AdapterType != "" {
		fmt.Fprintf(w, "adapter type:\t%s\n", inf.AdapterType)
	}
	if g := inf.Geometry; g != nil {
		fmt.Fprintf(w, "geometry:\t%d/%d/%d\n", g.Cylinders, g.Heads, g.Sectors)
	}
	if g := inf.BIOSGeometry; g != nil {
		fmt.Fprintf(w, "BIOS geometry:\t%d/%d/%d\n", g.Cylinders, g.Heads, g.Sectors)
	}
	if inf.HWVersion != 0 {
		fmt.Fprintf(w, "hardware version:\t%d\n", inf.HWVersion)
	}
	if inf.UUID != "" {
		fmt.Fprintf(w, "uuid:\t%s\n", inf.UUID)
	}
	fmt.Fprintf(w, "CID:\t%s\n", inf.CID)
	fmt.Fprintf(w, "parent CID:\t%s\n", inf.ParentCID)
	if inf.ParentFileNameHint != "" {
		fmt.Fprintf(w, "parent hint:\t%s\n", inf.ParentFileNameHint)
	}
	fmt.Fprintf(w, "links:\t%d\n", inf.NumLinks)
	w.Flush()
	for i, l := range inf.Chain {
		fmt.Fprintf(out, "link %d: %s  %s  CID %s  parent CID %s\n", i, l.Path, l.CreateType, l.CID, l.ParentCID)
		for j, e := range l.Extents {
			fmt.Fprintf(out, "  extent %d: %s %d %s", j, e.Access, e.Sectors, e.Type)
			if e.Path != "" {
				fmt.Fprintf(out, " %q", e.Path)
			}
			fmt.Fprintf(out, "  format %s", e.Format)
			if e.GrainSectors != 0 {
				fmt.Fprintf(out, ", grain %d sectors", e.GrainSectors)
			}
			if e.Version != 0 {
				fmt.Fprintf(out, ", version %d, flags %#x", e.Version, e.Flags)
			}
			if e.Compressed {
				fmt.Fprint(out, ", compressed")
			}
			if e.UncleanShutdown {
				fmt.Fprint(out, ", unclean shutdown")
			}
			fmt.Fprintln(out)
		}
	}
	if keys := d.MetadataKeys(); len(keys) > 0 {
		meta := d.Metadata()
		fmt.Fprintln(out, "metadata:")
		for _, k := range keys {
			fmt.Fprintf(out, "  %s = %q\n", k, meta[k])
		}
	}
	return nil
}

func cmdBlocks(c *cli.Context) error {
	asJSON, err := cliutil.WantJSON(c)
	if err != nil {
		return err
	}
	d, err := openDisk(c) // a URI too: its allocation map is the server's base:allocation
	if err != nil {
		return err
	}
	defer d.Close()
	blocks, err := d.AllocatedBlocks(0, uint64(d.Size())/vddk.SectorSize, c.Uint64("chunk"))
	if err != nil {
		return err
	}
	return printBlocks(c, asJSON, blocks, d.Size())
}

// printBlocks lists allocated ranges (sectors) as a table or JSON.
func printBlocks(c *cli.Context, asJSON bool, blocks []vddk.Block, size int64) error {
	if asJSON {
		type block struct {
			Offset      uint64 `json:"offset"` // sectors
			Length      uint64 `json:"length"` // sectors
			OffsetBytes uint64 `json:"offset_bytes"`
			LengthBytes uint64 `json:"length_bytes"`
		}
		out := make([]block, 0, len(blocks))
		for _, b := range blocks {
			out = append(out, block{b.Offset, b.Length, b.Offset * vddk.SectorSize, b.Length * vddk.SectorSize})
		}
		return json.NewEncoder(c.App.Writer).Encode(out)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "offset (sectors)\tlength (sectors)\toffset (bytes)\tlength (bytes)\t")
	var total uint64
	for _, b := range blocks {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t\n", b.Offset, b.Length, b.Offset*vddk.SectorSize, b.Length*vddk.SectorSize)
		total += b.Length
	}
	w.Flush()
	fmt.Fprintf(c.App.Writer, "%d ranges, %s allocated of %s\n", len(blocks), humanSize(int64(total*vddk.SectorSize)), humanSize(size))
	return nil
}

func cmdCat(c *cli.Context) error {
	// Into an empty file, an export's data ranges are read and written several at once, in any order;
	// into a stream, a URI takes vddk's in-order copy as any disk does.
	if f := vddk.SparseTarget(c.App.Writer); f != nil && nbd.IsURI(c.Args().First()) {
		return catNBD(c, f)
	}
	d, err := openDisk(c)
	if err != nil {
		return err
	}
	defer d.Close()
	return withProgress(c, "cat", func(p vddk.Progress) error { return d.CopyRawProgress(c.App.Writer, p) })
}

// allocatedBytes counts the bytes stored anywhere in the chain, by 512-byte sectors.
func allocatedBytes(d *vddk.Disk) (int64, error) {
	blocks, err := d.AllocatedBlocks(0, uint64(d.Size())/vddk.SectorSize, 1)
	var n int64
	for _, b := range blocks {
		n += int64(b.Length) * vddk.SectorSize
	}
	return n, err
}

func humanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".") + " " + units[i]
}

// fillActualSizes sets each extent's actual_size (the blocks its host file takes, as qemu-img's
// actual-size) and returns the total for the top link: its descriptor file and extents, each file once.
func fillActualSizes(inf *vddk.Info) int64 {
	var total int64
	seen := map[string]bool{}
	add := func(p string) int64 {
		var st syscall.Stat_t
		if p == "" || syscall.Stat(p, &st) != nil {
			return 0
		}
		return st.Blocks * 512
	}
	for i := range inf.Chain {
		l := &inf.Chain[i]
		if i == 0 && !seen[l.Path] {
			seen[l.Path] = true
			total += add(l.Path)
		}
		for j := range l.Extents {
			e := &l.Extents[j]
			e.ActualSize = add(e.Path)
			if i == 0 && e.Path != "" && !seen[e.Path] {
				seen[e.Path] = true
				total += e.ActualSize
			}
		}
	}
	return total
}
