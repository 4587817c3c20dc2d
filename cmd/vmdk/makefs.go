package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/vddk/makefs"
)

var makeFSCommand = &cli.Command{
	Name:      "make-fs",
	Usage:     "build a disk holding a new filesystem made from a folder or a tar archive (as virt-make-fs)",
	ArgsUsage: "SRC OUT",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: vddk.TypeMonolithicSparse, Usage: "disk `TYPE`: raw, " + strings.Join(vddk.CreateTypes, ", ")},
		&cli.StringFlag{Name: "fs", Usage: "`FILESYSTEM`: " + strings.Join(makefs.Filesystems, ", ")},
		&cli.StringFlag{Name: "size", Usage: "disk `SIZE` (K, M, G, T suffixes), or +SIZE: that much more than the content needs"},
		&cli.StringFlag{Name: "partition", Value: "none", Usage: "partition `TABLE`: " + strings.Join(makefs.Partitionings, ", ")},
		&cli.StringFlag{Name: "label", Usage: "filesystem `LABEL`"},
		&cli.BoolFlag{Name: "skip-unsupported", Usage: "leave out (and list) what the filesystem cannot hold instead of failing"},
		progressFlag,
	},
	Action: cmdMakeFS,
}

func cmdMakeFS(c *cli.Context) error {
	if c.NArg() != 2 {
		return cliutil.Usage(c, "make-fs needs SRC and OUT")
	}
	if c.String("fs") == "" {
		return cliutil.Usage(c, "make-fs needs --fs (%s)", strings.Join(makefs.Filesystems, ", "))
	}
	o := makefs.Options{FS: c.String("fs"), Type: c.String("type"), Partition: c.String("partition"),
		Label: c.String("label"), SkipUnsupported: c.Bool("skip-unsupported")}
	if s := c.String("size"); s != "" {
		o.Grow = strings.HasPrefix(s, "+")
		n, err := parseSize(strings.TrimPrefix(s, "+"))
		if err != nil {
			return cliutil.Usage(c, "%v", err)
		}
		o.Size = n
	}
	var res *makefs.Result
	err := withProgress(c, "make-fs", func(p vddk.Progress) error {
		o.Progress = p
		var err error
		res, err = makefs.Make(c.Args().Get(0), c.Args().Get(1), o)
		return err
	})
	if err != nil {
		return err
	}
	w := c.App.ErrWriter
	if w == nil {
		w = os.Stderr
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "left out %s: %s\n", s.Path, s.Reason)
	}
	return nil
}
