// Command vmdk inspects and reads VMDK virtual disks: info, cat, blocks.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/vddk"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vmdk:", err)
		os.Exit(1)
	}
}

var openFlags = []cli.Flag{
	&cli.BoolFlag{Name: "single-link", Usage: "open only the named link; ranges it does not hold read as zeros"},
	&cli.BoolFlag{Name: "ignore-cid-mismatch", Usage: "open a chain even if a parent changed after its child was made"},
	&cli.BoolFlag{Name: "allow-external-extents", Usage: "let extents and parents live outside the disk's folder (absolute paths, ../, devices)"},
}

func openDisk(c *cli.Context) (*vddk.Disk, error) {
	if c.NArg() != 1 {
		return nil, fmt.Errorf("%s needs exactly one DISK argument", c.Command.Name)
	}
	return vddk.Open(c.Args().First(), vddk.Options{
		SingleLink:         c.Bool("single-link"),
		IgnoreCIDMismatch:  c.Bool("ignore-cid-mismatch"),
		AllowExternalPaths: c.Bool("allow-external-extents"),
	})
}

func newApp() *cli.App {
	return &cli.App{
		Name:            "vmdk",
		Usage:           "inspect and read VMDK virtual disks (pure Go, no VMware binaries)",
		HideHelpCommand: true,
		Commands: []*cli.Command{
			{
				Name:      "info",
				Usage:     "show what a disk is: size, type, adapter, geometry, CIDs, chain and extents",
				ArgsUsage: "DISK",
				Flags:     append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}}, openFlags...),
				Action:    cmdInfo,
			},
			{
				Name:      "cat",
				Usage:     "write the whole virtual disk, chain resolved, as raw bytes to standard output",
				ArgsUsage: "DISK",
				Flags:     openFlags,
				Action:    cmdCat,
			},
			{
				Name:      "blocks",
				Usage:     "list the allocated ranges of a disk (anywhere in its chain)",
				ArgsUsage: "DISK",
				Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
					&cli.Uint64Flag{Name: "chunk", Value: 128, Usage: "chunk size in sectors"},
				}, openFlags...),
				Action: cmdBlocks,
			},
		},
	}
}
