package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
)

func args(c *cli.Context, n int, usage string) error {
	if c.NArg() != n {
		return cliutil.Usage(c, "%s needs %s", c.Command.Name, usage)
	}
	return nil
}

func cmdCommit(c *cli.Context) error {
	if err := args(c, 1, "CHILD"); err != nil {
		return err
	}
	return withProgress(c, "commit", func(p vddk.Progress) error { return vddk.Combine(c.Args().First(), p) })
}

func cmdRebase(c *cli.Context) error {
	if err := args(c, 2, "CHILD and NEWPARENT"); err != nil {
		return err
	}
	return vddk.Attach(c.Args().Get(0), c.Args().Get(1))
}

func cmdGrow(c *cli.Context) error {
	if err := args(c, 2, "DISK and SIZE"); err != nil {
		return err
	}
	size, err := parseSize(c.Args().Get(1))
	if err != nil {
		return err
	}
	return withProgress(c, "grow", func(p vddk.Progress) error { return vddk.Grow(c.Args().First(), size, p) })
}

func cmdShrink(c *cli.Context) error {
	if err := args(c, 1, "DISK"); err != nil {
		return err
	}
	return withProgress(c, "shrink", func(p vddk.Progress) error { return vddk.Shrink(c.Args().First(), p) })
}

func cmdDefrag(c *cli.Context) error {
	if err := args(c, 1, "DISK"); err != nil {
		return err
	}
	return withProgress(c, "defrag", func(p vddk.Progress) error { return vddk.Defragment(c.Args().First(), p) })
}

func cmdRename(c *cli.Context) error {
	if err := args(c, 2, "OLD and NEW"); err != nil {
		return err
	}
	return vddk.Rename(c.Args().Get(0), c.Args().Get(1))
}

func cmdRm(c *cli.Context) error {
	if err := args(c, 1, "DISK"); err != nil {
		return err
	}
	return vddk.Unlink(c.Args().First())
}

func cmdCheck(c *cli.Context) error {
	if err := args(c, 1, "DISK"); err != nil {
		return err
	}
	asJSON, err := cliutil.WantJSON(c)
	if err != nil {
		return err
	}
	problems, err := vddk.Check(c.Args().First(), c.Bool("repair"))
	if err != nil {
		return err
	}
	if asJSON {
		if problems == nil {
			problems = []vddk.Problem{}
		}
		if err := json.NewEncoder(c.App.Writer).Encode(problems); err != nil {
			return err
		}
	} else if len(problems) == 0 {
		fmt.Fprintln(c.App.Writer, "No errors were found on the disk.")
	}
	left := 0
	for _, p := range problems {
		if !asJSON {
			fmt.Fprintln(c.App.Writer, p)
		}
		if !p.Repaired {
			left++
		}
	}
	if left > 0 {
		return cli.Exit(fmt.Sprintf("%d problems remain", left), 2)
	}
	return nil
}
