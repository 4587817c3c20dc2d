package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
)

// parseSize reads a size with an optional K/M/G/T suffix (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch strings.ToUpper(s[n-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is not a number with an optional K, M, G or T suffix", s)
	}
	return v * mult, nil
}

func cmdCreate(c *cli.Context) error {
	if c.NArg() != 1 {
		return cliutil.Usage(c, "create needs exactly one DISK")
	}
	if c.String("size") == "" {
		return cliutil.Usage(c, "create needs --size")
	}
	size, err := parseSize(c.String("size"))
	if err != nil {
		return err
	}
	return vddk.Create(c.Args().First(), vddk.CreateParams{
		Type: c.String("type"), Capacity: size, Adapter: c.String("adapter"), HWVersion: c.Int("hw-version"),
	})
}

func cmdChild(c *cli.Context) error {
	if c.NArg() != 2 {
		return cliutil.Usage(c, "child needs PARENT and CHILD")
	}
	return vddk.CreateChild(c.Args().Get(0), c.Args().Get(1), c.String("type"))
}

func cmdConvert(c *cli.Context) error {
	if c.NArg() != 2 {
		return cliutil.Usage(c, "convert needs SRC and DST")
	}
	opts := vddk.Options{AllowExternalPaths: c.Bool("allow-external-extents")}
	open := vddk.Open // also of a network disk's URI
	if isVMDK, err := vddk.IsDiskImage(c.Args().Get(0)); err != nil {
		return err // also what must not be read as a raw image
	} else if !isVMDK {
		open = vddk.OpenRaw // a raw image: the whole file is the disk
	}
	src, err := open(c.Args().Get(0), opts)
	if err != nil {
		return err
	}
	defer src.Close()
	return withProgress(c, "convert", func(p vddk.Progress) error {
		return src.Clone(c.Args().Get(1), vddk.CreateParams{Type: c.String("type"), Adapter: c.String("adapter")}, p)
	})
}

func cmdWrite(c *cli.Context) error {
	if c.NArg() < 2 || c.NArg() > 3 {
		return cliutil.Usage(c, "write needs DISK OFFSET [FILE]")
	}
	off, err := parseSize(c.Args().Get(1))
	if err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	if c.NArg() == 3 {
		f, err := os.Open(c.Args().Get(2))
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	d, err := vddk.Open(c.Args().First(), vddk.Options{Writable: true})
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if _, err := d.WriteAt(buf[:n], off); err != nil {
				d.Close()
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			d.Close()
			return rerr
		}
	}
	return d.Close()
}

func cmdMeta(c *cli.Context) error {
	if c.NArg() < 1 || c.NArg() > 3 {
		return cliutil.Usage(c, "meta needs DISK [KEY [VALUE]]")
	}
	writable := c.NArg() == 3
	d, err := vddk.Open(c.Args().First(), vddk.Options{Writable: writable})
	if err != nil {
		return err
	}
	switch c.NArg() {
	case 1:
		meta := d.Metadata()
		for _, k := range d.MetadataKeys() {
			fmt.Fprintf(c.App.Writer, "%s = %q\n", k, meta[k])
		}
	case 2:
		v, ok := d.Metadata()[c.Args().Get(1)]
		if !ok {
			d.Close()
			return fmt.Errorf("%s has no metadata key %q", c.Args().First(), c.Args().Get(1))
		}
		fmt.Fprintln(c.App.Writer, v)
	case 3:
		if err := d.WriteMetadata(c.Args().Get(1), c.Args().Get(2)); err != nil {
			d.Close()
			return err
		}
	}
	return d.Close()
}
