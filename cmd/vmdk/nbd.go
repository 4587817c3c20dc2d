package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/vddk/nbd"
)

func dialNBD(c *cli.Context) (*nbd.Disk, error) {
	if c.NArg() != 1 {
		return nil, cliutil.Usage(c, "%s needs exactly one DISK", c.Command.Name)
	}
	return nbd.Dial(c.Args().First(), nbd.Options{})
}

// infoNBD is vmdk info of an NBD export: what the protocol tells (size, allocation map, read-only).
func infoNBD(c *cli.Context, asJSON bool) error {
	d, err := dialNBD(c)
	if err != nil {
		return err
	}
	defer d.Close()
	inf := struct {
		Path       string `json:"path"`
		Capacity   int64  `json:"capacity"`
		Sectors    int64  `json:"sectors"`
		Allocation bool   `json:"allocation_map"`
		ReadOnly   bool   `json:"read_only"`
	}{d.String(), d.Size(), d.Size() / vddk.SectorSize, d.HasAllocation(), d.ReadOnly()}
	if asJSON {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(inf)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 1, ' ', 0)
	fmt.Fprintf(w, "image:\t%s\n", inf.Path)
	fmt.Fprintf(w, "virtual size:\t%s (%d bytes, %d sectors)\n", humanSize(inf.Capacity), inf.Capacity, inf.Sectors)
	fmt.Fprintf(w, "allocation map:\t%v\n", inf.Allocation)
	fmt.Fprintf(w, "read-only export:\t%v\n", inf.ReadOnly)
	return w.Flush()
}

// catNBD is vmdk cat of an NBD export into f, an empty regular file (vddk.SparseTarget): holes stay
// holes.
func catNBD(c *cli.Context, f *os.File) error {
	d, err := dialNBD(c)
	if err != nil {
		return err
	}
	defer d.Close()
	return withProgress(c, "cat", func(p vddk.Progress) error {
		ext, err := d.Extents(0, d.Size())
		if err != nil {
			return err
		}
		return copyNBDSparse(d, f, ext, p)
	})
}

// copyNBDSparse copies the data ranges into an empty regular file at their offsets, in the order the
// replies come, written by the goroutines that receive them (nbd.Disk.CopyTo); holes stay holes.
func copyNBDSparse(d *nbd.Disk, f *os.File, ext []nbd.Extent, progress vddk.Progress) error {
	var data []nbd.Extent
	for _, e := range ext {
		if !e.Hole {
			data = append(data, e)
		}
	}
	var step func(int64)
	if progress != nil {
		var mu sync.Mutex
		var done int64
		step = func(n int64) {
			mu.Lock()
			done += n
			progress(done, d.Size())
			mu.Unlock()
		}
	}
	if err := d.CopyTo(f, data, step); err != nil {
		return err
	}
	if progress != nil {
		progress(d.Size(), d.Size())
	}
	return f.Truncate(d.Size())
}
