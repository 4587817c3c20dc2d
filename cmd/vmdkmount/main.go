// Command vmdkmount finds and mounts the volumes of VMDK virtual disks (and raw images).
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// logLevel is raised to Debug by --debug; go-fuse's request log arrives through the log package, which
// slog routes at Info.
var logLevel = new(slog.LevelVar)

func main() {
	logLevel.Set(slog.LevelWarn)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})))
	if err := newApp().Run(optionsFirst(os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "vmdkmount:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:            "vmdkmount",
		Usage:           "find and mount the volumes of VMDK virtual disks (pure Go, no VMware binaries)",
		UsageText:       "vmdkmount [options] DISK [DISK...] MOUNTPOINT\n   vmdkmount [options] DISK VOLUME-ID MOUNTPOINT\n   vmdkmount list DISK...\n   vmdkmount umount MOUNTPOINT",
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
				ArgsUsage: "DISK [DISK...]",
				Description: "Each DISK is a VMDK (any kind, with its chain) or a raw image. Several disks form one set, so\n" +
					"volumes spanning disks (LVM, Windows dynamic disks) assemble. Like `vmware-mount -p` and mmls.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
					&cli.BoolFlag{Name: "all", Usage: "also list containers (extended partitions, LVM PVs, LDM partitions)"},
					&cli.IntFlag{Name: "sector-size", Usage: "logical sector size of the partition tables: 512 or 4096 (default: probe)"},
					&cli.BoolFlag{Name: "allow-external-extents", Usage: "let VMDK extents and parents live outside the disk's folder"},
				},
				Action: cmdList,
			},
		},
	}
}

// optionsFirst moves flags that follow the positional arguments in front of them, as mount.fuse3 calls
// us: "vmdkmount SOURCE MOUNTPOINT -o ro,allow_other" (fstab type fuse.vmdkmount).
func optionsFirst(args []string) []string {
	if len(args) < 2 || args[1] == "list" || args[1] == "umount" || args[1] == "unmount" {
		return args
	}
	var flags, pos []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case a == "-o" && i+1 < len(args):
			flags = append(flags, a, args[i+1])
			i++
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			if takesValue(a) && i+1 < len(args) && !strings.Contains(a, "=") {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(append([]string{args[0]}, flags...), pos...)
}

// takesValue names the mount flags that read the next argument.
func takesValue(flag string) bool {
	switch strings.TrimLeft(flag, "-") {
	case "volume", "redo":
		return true
	}
	return false
}
