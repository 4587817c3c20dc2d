package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/vddk/nbd"
)

var serveCommand = &cli.Command{
	Name:  "serve",
	Usage: "serve disks over NBD (qemu-img, qemu-nbd clients, nbdinfo, nbdcopy, the kernel), one export each, until SIGTERM",
	Description: "Read-only unless --rw, which sends writes to a redo log (a child VMDK) as vmdkmount --rw does;\n" +
		"the disk itself is never written. Without --socket or --listen it listens on localhost:10809.",
	ArgsUsage: "DISK...",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "socket", Aliases: []string{"k"}, Usage: "listen on the Unix socket `PATH`"},
		&cli.StringFlag{Name: "listen", Usage: "listen on TCP `ADDR:PORT`"},
		&cli.StringSliceFlag{Name: "export", Aliases: []string{"x"}, Usage: "export `NAME` of each DISK in order (default: \"\" for one disk, file names without extension for several)"},
		&cli.BoolFlag{Name: "rw", Usage: "accept writes, into a redo log; the disk is never written"},
		&cli.StringFlag{Name: "redo", Usage: "`PATH` of the redo log with --rw (default: a temporary file removed at exit); -N is added for the second disk on"},
		&cli.BoolFlag{Name: "keep-redo", Usage: "keep the redo log at exit; 'vmdk commit' merges it"},
		&cli.StringFlag{Name: "tls-cert", Usage: "certificate `FILE` (PEM): clients must use TLS (nbds://)"},
		&cli.StringFlag{Name: "tls-key", Usage: "private key `FILE` (PEM) of --tls-cert"},
		&cli.IntFlag{Name: "max-connections", Value: 64, Usage: "connections served at once"},
		&cli.DurationFlag{Name: "idle-timeout", Value: 30 * time.Minute, Usage: "close a connection that sends no request for this `DURATION` (0: never; the kernel's nbd client does not reconnect)"},
	}, openFlags...),
	Action: cmdServe,
}

func cmdServe(c *cli.Context) error {
	if c.NArg() == 0 {
		return cliutil.Usage(c, "serve needs at least one DISK")
	}
	if c.String("socket") != "" && c.String("listen") != "" {
		return cliutil.Usage(c, "--socket and --listen exclude each other")
	}
	if (c.String("tls-cert") == "") != (c.String("tls-key") == "") {
		return cliutil.Usage(c, "--tls-cert and --tls-key go together")
	}
	names := c.StringSlice("export")
	if len(names) > c.NArg() {
		return cliutil.Usage(c, "%d export names for %d disks", len(names), c.NArg())
	}
	srv := &nbd.Server{MaxConns: c.Int("max-connections"), IdleTimeout: c.Duration("idle-timeout")}
	if c.String("tls-cert") != "" {
		cert, err := tls.LoadX509KeyPair(c.String("tls-cert"), c.String("tls-key"))
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var closers []io.Closer
	var redos []string
	defer func() {
		for _, cl := range closers {
			cl.Close()
		}
		for _, r := range redos {
			if err := vddk.Unlink(r); err != nil {
				slog.Warn("redo log not removed", "path", r, "err", err)
			}
		}
	}()
	vopts := vddk.Options{SingleLink: c.Bool("single-link"), IgnoreCIDMismatch: c.Bool("ignore-cid-mismatch"), AllowExternalPaths: c.Bool("allow-external-extents")}
	for i, p := range c.Args().Slice() {
		d, redo, err := openServed(c, p, i, vopts)
		if redo != "" && !c.Bool("keep-redo") {
			redos = append(redos, redo)
		}
		if err != nil {
			return err
		}
		closers = append(closers, d)
		e := &nbd.Export{Size: d.Size(), R: d, Allocated: allocated(d), Description: filepath.Base(p)}
		switch {
		case i < len(names):
			e.Name = names[i]
		case c.NArg() > 1:
			e.Name = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		}
		if c.Bool("rw") {
			e.W = d
		}
		for _, o := range srv.Exports {
			if o.Name == e.Name {
				return cliutil.Usage(c, "two disks would share the export name %q (name them with --export)", e.Name)
			}
		}
		srv.Exports = append(srv.Exports, e)
	}
	l, err := listen(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Serve(ctx, l)
}

// openServed opens DISK for serving: as it is, or with --rw through a new redo log on top of it.
func openServed(c *cli.Context, p string, i int, vopts vddk.Options) (d *vddk.Disk, redo string, err error) {
	// A VMDK or another format vddk reads, or a network disk; IsDiskImage refuses what is neither.
	isVMDK, err := vddk.IsDiskImage(p)
	if err != nil {
		return nil, "", err
	}
	if !isVMDK {
		if c.Bool("rw") {
			return nil, "", fmt.Errorf("%s is a raw image: --rw needs a VMDK (convert it with vmdk convert)", p)
		}
		d, err := vddk.OpenRaw(p, vopts)
		return d, "", err
	}
	if !c.Bool("rw") {
		d, err := vddk.Open(p, vopts)
		return d, "", err
	}
	// As vmdkmount --rw: a temporary redo log never has a name (O_TMPFILE: nothing is left even after
	// kill -9); one at --redo PATH is removed at exit unless --keep-redo.
	redo = vddk.NumberedPath(c.String("redo"), i)
	if d, err = vddk.OpenRedo(p, redo, vopts); err != nil {
		return nil, "", err
	}
	return d, redo, nil
}

func listen(c *cli.Context) (net.Listener, error) {
	if p := c.String("socket"); p != "" {
		os.Remove(p) // a socket left by a killed server; Listen refuses any other file
		return net.Listen("unix", p)
	}
	addr := c.String("listen")
	if addr == "" {
		addr = "localhost:10809"
	}
	return net.Listen("tcp", addr)
}

// allocated answers base:allocation from the disk's allocation map (sectors), in bytes; a partial last
// sector of a raw image counts as data.
func allocated(d *vddk.Disk) func(off, n int64) ([]nbd.Extent, error) {
	whole := d.Size() / vddk.SectorSize * vddk.SectorSize
	return func(off, n int64) ([]nbd.Extent, error) {
		var out []nbd.Extent
		if s, e := off/vddk.SectorSize, (min(off+n, whole)+vddk.SectorSize-1)/vddk.SectorSize; s < e {
			blocks, err := d.AllocatedBlocks(uint64(s), uint64(e-s), 1)
			if err != nil {
				return nil, err
			}
			for _, b := range blocks {
				out = append(out, nbd.Extent{Offset: int64(b.Offset) * vddk.SectorSize, Length: int64(b.Length) * vddk.SectorSize})
			}
		}
		if off+n > whole {
			out = append(out, nbd.Extent{Offset: max(off, whole), Length: off + n - max(off, whole)})
		}
		return out, nil
	}
}
