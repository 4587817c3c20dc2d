// Command vmdk inspects and reads VMDK virtual disks: info, cat, blocks.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

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
				Name:      "create",
				Usage:     "create an empty disk",
				ArgsUsage: "DISK",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "disk type: " + strings.Join(vddk.CreateTypes, ", ")},
					&cli.StringFlag{Name: "size", Aliases: []string{"s"}, Required: true, Usage: "capacity in bytes, with an optional K/M/G/T suffix"},
					&cli.StringFlag{Name: "adapter", Aliases: []string{"a"}, Value: "ide", Usage: "adapter type: " + strings.Join(vddk.Adapters, ", ")},
					&cli.IntFlag{Name: "hw-version", Value: 4, Usage: "virtual hardware version written in the disk database"},
				},
				Action: cmdCreate,
			},
			{
				Name:      "convert",
				Usage:     "copy a disk (chain resolved) into a new disk of any type, or a raw image",
				ArgsUsage: "SRC DST",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "target type: raw, " + strings.Join(vddk.CreateTypes, ", ")},
					&cli.StringFlag{Name: "adapter", Aliases: []string{"a"}, Usage: "adapter type (default: the source's)"},
					&cli.BoolFlag{Name: "allow-external-extents", Usage: "let the source's extents and parents live outside its folder"},
				},
				Action: cmdConvert,
			},
			{
				Name:      "child",
				Usage:     "create a redo log (delta link) on top of a disk",
				ArgsUsage: "PARENT CHILD",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "monolithicSparse or twoGbMaxExtentSparse"}},
				Action:    cmdChild,
			},
			{
				Name:      "write",
				Usage:     "write bytes from FILE (or standard input) into the disk at a byte offset (top link only)",
				ArgsUsage: "DISK OFFSET [FILE]",
				Action:    cmdWrite,
			},
			{
				Name:      "meta",
				Usage:     "list the disk database, show one key, or set one (an empty value removes it)",
				ArgsUsage: "DISK [KEY [VALUE]]",
				Action:    cmdMeta,
			},
			{Name: "commit", Usage: "merge a child into its parent and remove the child", ArgsUsage: "CHILD", Action: cmdCommit},
			{Name: "rebase", Usage: "point a child at another parent (its data is kept as it is)", ArgsUsage: "CHILD NEWPARENT", Action: cmdRebase},
			{Name: "grow", Usage: "enlarge a disk; the new space reads as zeros", ArgsUsage: "DISK SIZE", Action: cmdGrow},
			{Name: "shrink", Usage: "give back the space of all-zero grains of a sparse disk", ArgsUsage: "DISK", Action: cmdShrink},
			{Name: "defrag", Usage: "rewrite a sparse disk with its grains in order", ArgsUsage: "DISK", Action: cmdDefrag},
			{Name: "rename", Usage: "rename a disk and its extent files", ArgsUsage: "OLD NEW", Action: cmdRename},
			{Name: "rm", Usage: "delete a disk: its descriptor and every extent file", ArgsUsage: "DISK", Action: cmdRm},
			{
				Name:      "check",
				Usage:     "check a disk's structures; --repair mends what can be mended",
				ArgsUsage: "DISK",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "repair", Usage: "repair what can be repaired"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
				},
				Action: cmdCheck,
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
