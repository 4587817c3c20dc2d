// Command vmdkmount finds and mounts the volumes of VMDK virtual disks (and raw images).
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
)

// logLevel is raised to Debug by --debug; go-fuse's request log arrives through the log package, which
// slog routes at Info.
var logLevel = new(slog.LevelVar)

// runArgs is the command line being run, flags first: the daemon runs it again in the background.
var runArgs []string

// reported is set once the daemon has handed its error to the waiting caller, which prints it.
var reported bool

func main() {
	logLevel.Set(slog.LevelWarn)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})))
	args := os.Args
	if isMountHelper(args[0]) {
		var err error
		if args, err = helperArgs(args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		} else if args == nil {
			return
		}
	}
	app := newApp()
	runArgs = cliutil.Reorder(app, args)
	if err := app.Run(runArgs); err != nil {
		if !reported {
			fmt.Fprintln(os.Stderr, "vmdkmount:", err)
		}
		os.Exit(cliutil.ExitCode(err))
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:            "vmdkmount",
		Usage:           "find and mount the volumes of VMDK virtual disks (pure Go, no VMware binaries)",
		UsageText:       "vmdkmount [options] DISK [DISK...] MOUNTPOINT\nvmdkmount [options] DISK VOLUME-ID MOUNTPOINT\nvmdkmount list [--mounts] DISK...\nvmdkmount inspect [--json] DISK...\nvmdkmount umount MOUNTPOINT",
		Description:     mountHelp,
		HideHelpCommand: true,
		Flags:           mountFlags,
		Action:          cmdMount,
		Commands: []*cli.Command{
			{
				Name:      "umount",
				Aliases:   []string{"unmount"},
				Usage:     "unmount (retrying while busy) and clear a stale mount left by a killed process",
				ArgsUsage: "MOUNTPOINT",
				Action:    cmdUmount,
			},
			{
				Name:      "list",
				Usage:     "list the volumes of a disk set: partitions, LVM and Windows dynamic volumes, filesystems",
				ArgsUsage: "DISK [DISK...] | --mounts",
				Description: "Each DISK is a VMDK (any kind, with its chain) or a raw image. Several disks form one set, so\n" +
					"volumes spanning disks (LVM, Windows dynamic disks) assemble. Like `vmware-mount -p` and mmls.",
				Flags: append(cliutil.JSONFlags(),
					&cli.BoolFlag{Name: "mounts", Usage: "list the active vmdkmount mounts and their disks instead (like vmware-mount -L)"},
					&cli.BoolFlag{Name: "all", Usage: "also list containers (extended partitions, LVM PVs, LDM partitions)"},
					&cli.IntFlag{Name: "sector-size", Usage: "logical `BYTES` per sector of the partition tables: 512 or 4096 (default: probe)"},
					allowExternalFlag(),
					noReplayFlag,
				),
				Action: cmdList,
			},
			inspectCommand,
		},
	}
	cliutil.Setup(app)
	return app
}
