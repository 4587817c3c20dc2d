// Command vmdk inspects and reads VMDK virtual disks: info, cat, blocks.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	app := newApp()
	if err := app.Run(cliutil.Reorder(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "vmdk:", err)
		os.Exit(cliutil.ExitCode(err))
	}
}

var openFlags = []cli.Flag{
	&cli.BoolFlag{Name: "single-link", Usage: "open only the named link; ranges it does not hold read as zeros"},
	&cli.BoolFlag{Name: "ignore-cid-mismatch", Usage: "open a chain even if a parent changed after its child was made"},
	&cli.BoolFlag{Name: "allow-external-extents", Usage: "let extents live outside the disk's folder (absolute paths, ../, devices); a parent may anyway when it is a disk image"},
}

func openDisk(c *cli.Context) (*vddk.Disk, error) {
	if c.NArg() != 1 {
		return nil, cliutil.Usage(c, "%s needs exactly one DISK", c.Command.Name)
	}
	if isVMDK, err := vddk.IsVMDK(c.Args().First()); err == nil && !isVMDK {
		if err := vddk.RefuseUnread(c.Args().First()); err != nil {
			return nil, err
		}
	}
	return vddk.Open(c.Args().First(), vddk.Options{
		SingleLink:         c.Bool("single-link"),
		IgnoreCIDMismatch:  c.Bool("ignore-cid-mismatch"),
		AllowExternalPaths: c.Bool("allow-external-extents"),
	})
}

func newApp() *cli.App {
	app := &cli.App{
		Name:            "vmdk",
		Usage:           "inspect and read VMDK virtual disks (pure Go, no VMware binaries)",
		UsageText:       "vmdk COMMAND [options] ARGS... (vmdk COMMAND --help for each)",
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			switch {
			case c.NArg() == 0:
				return cliutil.Usage(c, "missing COMMAND")
			case c.Args().First() == "help" && c.NArg() > 1:
				return cliutil.Usage(c, "no command \"help\": for help, vmdk %s --help", c.Args().Get(1))
			case c.Args().First() == "help":
				return cliutil.Usage(c, "no command \"help\": for help, vmdk --help")
			}
			return cliutil.Usage(c, "no command %q", c.Args().First())
		},
		Commands: []*cli.Command{
			{
				Name:      "info",
				Usage:     "show what a disk is: size, type, adapter, geometry, CIDs, chain and extents",
				ArgsUsage: "DISK",
				Flags:     append(cliutil.JSONFlags(), openFlags...),
				Action:    cmdInfo,
			},
			{
				Name:      "cat",
				Usage:     "write the whole virtual disk, chain resolved, as raw bytes to standard output",
				ArgsUsage: "DISK",
				Flags:     append([]cli.Flag{progressFlag}, openFlags...),
				Action:    cmdCat,
			},
			{
				Name:      "create",
				Usage:     "create an empty disk",
				ArgsUsage: "DISK",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "disk `TYPE`: " + strings.Join(vddk.CreateTypes, ", ")},
					&cli.StringFlag{Name: "size", Aliases: []string{"s"}, Usage: "capacity: `SIZE` in bytes, with an optional K/M/G/T suffix (required)"},
					&cli.StringFlag{Name: "adapter", Aliases: []string{"a"}, Value: "ide", Usage: "`ADAPTER` type: " + strings.Join(vddk.Adapters, ", ")},
					&cli.IntFlag{Name: "hw-version", Value: 4, Usage: "virtual hardware `VERSION` written in the disk database"},
				},
				Action: cmdCreate,
			},
			{
				Name:      "convert",
				Aliases:   []string{"clone"},
				Usage:     "copy a disk (chain resolved) into a new disk of any type, or a raw image (sparse)",
				ArgsUsage: "SRC DST",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "target `TYPE`: raw, " + strings.Join(vddk.CreateTypes, ", ")},
					&cli.StringFlag{Name: "adapter", Aliases: []string{"a"}, Usage: "`ADAPTER` type (default: the source's)"},
					progressFlag,
					&cli.BoolFlag{Name: "allow-external-extents", Usage: "let the source's extents live outside its folder (a parent may anyway when it is a disk image)"},
				},
				Action: cmdConvert,
			},
			makeFSCommand,
			{
				Name:      "child",
				Usage:     "create a redo log (delta link) on top of a disk",
				ArgsUsage: "PARENT CHILD",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "`TYPE` of the child: monolithicSparse or twoGbMaxExtentSparse"}},
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
			{Name: "commit", Usage: "merge a child into its parent and remove the child", ArgsUsage: "CHILD", Flags: []cli.Flag{progressFlag}, Action: cmdCommit},
			{Name: "rebase", Usage: "point a child at another parent (its data is kept as it is)", ArgsUsage: "CHILD NEWPARENT", Action: cmdRebase},
			{Name: "grow", Usage: "enlarge a disk; the new space reads as zeros", ArgsUsage: "DISK SIZE", Flags: []cli.Flag{progressFlag}, Action: cmdGrow},
			{Name: "shrink", Usage: "give back the space of all-zero grains of a sparse disk", ArgsUsage: "DISK", Flags: []cli.Flag{progressFlag}, Action: cmdShrink},
			{Name: "defrag", Usage: "rewrite a sparse disk with its grains in order", ArgsUsage: "DISK", Flags: []cli.Flag{progressFlag}, Action: cmdDefrag},
			{Name: "rename", Usage: "rename a disk and its extent files", ArgsUsage: "OLD NEW", Action: cmdRename},
			{Name: "rm", Usage: "delete a disk: its descriptor and every extent file", ArgsUsage: "DISK", Action: cmdRm},
			{
				Name:      "check",
				Usage:     "check a disk's structures; --repair mends what can be mended",
				ArgsUsage: "DISK",
				Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "repair", Usage: "repair what can be repaired"},
				}, cliutil.JSONFlags()...),
				Action: cmdCheck,
			},
			{
				Name:      "blocks",
				Usage:     "list the allocated ranges of a disk (anywhere in its chain)",
				ArgsUsage: "DISK",
				Flags: append(append(cliutil.JSONFlags(),
					&cli.Uint64Flag{Name: "chunk", Value: 128, Usage: "chunk size in `SECTORS`"},
				), openFlags...),
				Action: cmdBlocks,
			},
			serveCommand,
		},
	}
	cliutil.Setup(app)
	return app
}
