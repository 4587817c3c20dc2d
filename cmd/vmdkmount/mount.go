package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/fusefs"
	"github.com/vmdkmount/vmdkmount/internal/cliutil"
	"github.com/vmdkmount/vmdkmount/vddk"
	_ "github.com/vmdkmount/vmdkmount/vddk/nbd" // NBD URIs open as disks
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const daemonEnv = "VMDKMOUNT_READY_FD"

var noReplayFlag = &cli.BoolFlag{Name: "no-replay", Usage: "show volumes as they lie on disk: do not replay a journal or log that needs recovery (the state says dirty)"}

var mountFlags = []cli.Flag{
	&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "stay in the foreground (without it: return once the mount is ready)"},
	&cli.StringFlag{Name: "volume", Usage: "put the file tree of volume `ID` straight at MOUNTPOINT (ids as vmdkmount list prints them)"},
	&cli.BoolFlag{Name: "raw", Usage: "show only raw/: the disks and volumes as raw files"},
	&cli.BoolFlag{Name: "inspector", Aliases: []string{"i"}, Usage: "show the guest OS as it sees itself (as guestmount -i): Windows drives as C/, D/…, a Linux root with its fstab mounts; raw/ beside"},
	&cli.StringFlag{Name: "root", Usage: "with -i, the OS root to show: a volume `ID`, as vmdkmount inspect prints them"},
	&cli.StringSliceFlag{Name: "o", Usage: "mount `OPTIONS`, comma-separated: allow_other, uid=N, gid=N, ro, rw, volume=ID, fsname=NAME, and fstab's generic ones"},
	&cli.BoolFlag{Name: "rw", Usage: "make raw/disk writable; writes go to a redo log (a child VMDK), never to the disk itself. File trees stay read-only"},
	&cli.StringFlag{Name: "redo", Usage: "`PATH` of the redo log with --rw (default: a temporary file removed at unmount)"},
	&cli.BoolFlag{Name: "keep-redo", Usage: "keep the redo log after unmount; 'vmdk commit' merges it"},
	&cli.BoolFlag{Name: "show-system-files", Usage: "show NTFS metadata files ($MFT, $LogFile, …)"},
	&cli.BoolFlag{Name: "list-streams", Usage: "list NTFS alternate data streams as FILE:STREAM entries beside their file (they open by that name either way)"},
	allowExternalFlag(),
	&cli.StringFlag{Name: "log", Usage: "also append the mount's log (read errors, warnings) to `FILE`; it goes to syslog once the mount runs in the background"},
	&cli.BoolFlag{Name: "debug", Usage: "log every FUSE request"},
	noReplayFlag,
	&cli.BoolFlag{Name: "mount-helper", Hidden: true}, // run by mount(8) as mount.vmdk
}

const mountHelp = `Mounts the disks (VMDK or raw images) at MOUNTPOINT:

   MOUNTPOINT/raw/disk           the whole virtual disk, chain resolved (disk0, disk1 … for several disks)
   MOUNTPOINT/raw/<volume id>    each volume as a raw file
   MOUNTPOINT/<volume id>/       the file tree of each volume whose filesystem is readable

Volume ids are those of 'vmdkmount list'. Nothing is ever written to the disks: the mount is read-only,
with nosuid and nodev, and visible only to you unless -o allow_other. With --rw, raw/disk accepts writes,
which land in a redo log.

Example:
   $ vmdkmount disk.vmdk /mnt/x
   $ ls /mnt/x
   p1  p2  raw
   $ ls /mnt/x/p2/Windows
   $ vmdkmount umount /mnt/x

In /etc/fstab (through /sbin/mount.vmdk, which make install puts there):
   /vm/disk.vmdk  /mnt/x  vmdk  ro,allow_other,nofail  0 0`

func cmdMount(c *cli.Context) error {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return cliutil.Usage(c, "missing DISK and MOUNTPOINT")
	case args[0] == "help" && !exists(args[0]):
		if len(args) > 1 {
			return cliutil.Usage(c, "no command \"help\": for help, vmdkmount %s --help", args[1])
		}
		return cliutil.Usage(c, "no command \"help\": for help, vmdkmount --help")
	case len(args) == 1:
		return cliutil.Usage(c, "missing MOUNTPOINT after %s", args[0])
	}
	mountpoint := args[len(args)-1]
	disks := args[:len(args)-1]
	o, err := parseO(c.StringSlice("o"), c.Bool("mount-helper"))
	if err != nil {
		return err
	}
	volume := c.String("volume")
	if volume == "" {
		volume = o.volume
	}
	// vmware-mount style: DISK ID MOUNTPOINT, the id a bare partition number too.
	if volume == "" && len(disks) == 2 && !exists(disks[1]) && !strings.ContainsAny(disks[1], "/.") {
		volume, disks = disks[1], disks[:1]
	}
	if n, err := strconv.Atoi(volume); err == nil && n > 0 {
		volume = "p" + volume
	}
	writable := c.Bool("rw") || o.rw
	if st, err := os.Stat(mountpoint); err != nil || !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", mountpoint)
	}
	if err := refuseStacking(mountpoint); err != nil {
		return err
	}
	if !c.Bool("foreground") && os.Getenv(daemonEnv) == "" {
		return daemonize()
	}
	if err := logTo(c.String("log"), false); err != nil {
		ready(err)
		return err
	}
	err = serve(c, disks, mountpoint, volume, o, writable)
	if err != nil {
		ready(err)
	}
	return err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// daemonize runs this command again in the background and returns once it reports the mount ready.
func daemonize() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, runArgs[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	// Until the mount is up, the daemon's standard error is ours: fusermount's own message (such as
	// "option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf") reaches the caller.
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	br := bufio.NewReader(r)
	line, err := br.ReadString('\n')
	for strings.HasPrefix(line, "note: ") && err == nil { // a volume's state, printed before the mount returns
		fmt.Fprint(os.Stderr, line)
		line, err = br.ReadString('\n')
	}
	if err != nil && line == "" {
		cmd.Wait()
		return errors.New("the mount process stopped before the mount was ready")
	}
	if line = strings.TrimSpace(line); line != "ok" {
		cmd.Wait()
		return errors.New(strings.TrimPrefix(line, "error: "))
	}
	cmd.Process.Release()
	return nil
}

// ready tells a waiting parent that the mount is up (err nil) or failed. Once up, the daemon lets go of
// the caller's terminal and logs to syslog (and --log FILE) instead. notes (the volumes that are not
// clean) go to standard error first, through the parent when in the background.
func ready(err error, notes ...string) {
	fd := os.Getenv(daemonEnv)
	if fd == "" {
		for _, n := range notes {
			fmt.Fprintln(os.Stderr, "note:", n)
		}
		return
	}
	os.Unsetenv(daemonEnv)
	f := os.NewFile(3, "ready")
	if err != nil {
		fmt.Fprintf(f, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		reported = true
		f.Close()
		return
	}
	// Let go of the caller's descriptors before saying ok, so a caller reading our output to its end
	// (a pipe) is not held open by the daemon.
	if null, e := os.OpenFile(os.DevNull, os.O_RDWR, 0); e == nil {
		syscall.Dup2(int(null.Fd()), 0)
		syscall.Dup2(int(null.Fd()), 1)
		syscall.Dup2(int(null.Fd()), 2)
		null.Close()
	}
	if err := logTo(logFile, true); err != nil {
		slog.Warn("no log", "err", err)
	}
	for _, n := range notes {
		fmt.Fprintf(f, "note: %s\n", strings.ReplaceAll(n, "\n", " "))
	}
	fmt.Fprintln(f, "ok")
	f.Close()
}

func serve(c *cli.Context, paths []string, mountpoint, volume string, o mountOpts, writable bool) error {
	vopts := vddk.Options{AllowExternalPaths: c.Bool("allow-external-extents")}
	var closers []io.Closer
	defer func() {
		for _, cl := range closers {
			cl.Close()
		}
	}()
	var disks []volumes.Disk
	var raws []fusefs.RawSource
	var redos []string
	mounted := false
	defer func() {
		// Close the disks first: the redo log is locked while it is open. A kept redo log stays only
		// when the mount came up.
		for _, cl := range closers {
			cl.Close()
		}
		closers = nil
		for _, r := range redos {
			if mounted && c.Bool("keep-redo") {
				continue
			}
			if err := vddk.Unlink(r); err != nil {
				slog.Warn("redo log not removed", "path", r, "err", err)
			}
		}
	}()
	mtime := time.Time{}
	for i, p := range paths {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(mtime) {
			mtime = st.ModTime()
		}
		name := "disk"
		if len(paths) > 1 {
			name = fmt.Sprintf("disk%d", i)
		}
		var d volumes.Disk
		var w io.WriterAt
		// A network disk opens through vddk (read-only, or under a redo log with --rw); of a file,
		// IsDiskImage refuses what must not be read as a raw image.
		isVMDK, err := vddk.IsDiskImage(p)
		if err != nil {
			return err
		}
		switch {
		case writable && isVMDK:
			vd, err := openRedo(c, p, i, vopts, &redos)
			if err != nil {
				return err
			}
			closers = append(closers, vd)
			d, w = vd, vd
		case writable:
			return fmt.Errorf("%s is a raw image: --rw needs a VMDK (convert it with vmdk convert)", p)
		case isVMDK:
			vd, err := vddk.Open(p, vopts)
			if err != nil {
				return err
			}
			closers = append(closers, vd)
			d = vd
		default:
			vd, err := vddk.OpenRaw(p, vopts)
			if err != nil {
				return err
			}
			closers = append(closers, vd)
			d = vd
		}
		disks = append(disks, d)
		raw := fusefs.RawSource{Name: name, R: d, W: w, Size: d.Size()}
		if vd, ok := d.(*vddk.Disk); ok && w == nil {
			raw.Span = vd.FileSpan
		}
		raws = append(raws, raw)
	}
	noticeATime(disks)
	set, err := volumes.Open(disks, volumes.Options{NoReplay: c.Bool("no-replay")})
	if err != nil {
		return err
	}
	layout := &fusefs.Layout{Raw: raws, Time: mtime, UID: o.uid, GID: o.gid, ForceOwner: o.uidSet, ListStreams: c.Bool("list-streams")}
	for _, d := range disks {
		layout.DiskSize += d.Size()
	}
	topts := volumes.TreeOptions{ShowSystemFiles: c.Bool("show-system-files")}
	var notes []string
	for _, v := range set.Volumes() {
		rs := fusefs.RawSource{Name: v.ID, R: v, Size: v.Size()}
		if v.Disk >= 0 && len(v.Extents) == 1 && !writable {
			// A partition or whole disk is a plain slice of one disk: its ranges splice like the disk's.
			if vd, ok := disks[v.Disk].(*vddk.Disk); ok {
				base := v.Offset
				rs.Span = func(off, n int64) (*os.File, int64, bool) { return vd.FileSpan(base+off, n) }
			}
		}
		layout.Raw = append(layout.Raw, rs)
		if c.Bool("raw") || c.Bool("inspector") || (volume != "" && v.ID != volume) || !v.HasTree() {
			continue
		}
		t, err := v.OpenTree(topts)
		if err != nil {
			slog.Warn("volume shown raw only", "volume", v.ID, "err", err)
			continue
		}
		closers = append(closers, t)
		if st := volumes.State(t); st.State != fsys.StateClean {
			notes = append(notes, stateLine(v.ID, st.State, st.Detail))
		}
		layout.Trees = append(layout.Trees, fusefs.TreeSource{Name: v.ID, Tree: t})
	}
	layout.LinkVolume = linkVolumes(set, topts)
	if c.Bool("inspector") && !c.Bool("raw") {
		if writable || volume != "" {
			return fmt.Errorf("-i shows the guest's read-only trees: it goes with neither --rw nor a volume")
		}
		view, cl, err := guestTree(c, set, layout.Raw, topts, mtime)
		if err != nil {
			return err
		}
		closers = append(closers, cl)
		layout.Trees, layout.SingleTree = []fusefs.TreeSource{{Name: "guest", Tree: view}}, true
	}
	if volume != "" {
		if len(layout.Trees) == 0 {
			return noSuchVolume(set, volume)
		}
		layout.SingleTree = true
	}
	if c.Bool("debug") {
		logLevel.Set(slog.LevelDebug)
	}
	// Listen before the mount appears: a signal right after it unmounts instead of killing the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	srv, err := fusefs.Mount(mountpoint, layout, fusefs.MountOptions{
		AllowOther: o.allowOther, Writable: writable, FsName: fsName(paths, o), Debug: c.Bool("debug"),
	})
	if err != nil && strings.Contains(err.Error(), "fusermount exited with code") {
		// Its exit code says nothing: fusermount's own message, on the caller's standard error just
		// above, gives the reason.
		return fmt.Errorf("mount %s: fusermount refused it (its message is above)", mountpoint)
	}
	if err != nil {
		return err
	}
	mounted = true
	ready(nil, notes...)
	// For performance work: VMDKMOUNT_CPUPROFILE=FILE profiles a foreground mount until it unmounts.
	if pf := os.Getenv("VMDKMOUNT_CPUPROFILE"); pf != "" {
		if stop, err := startCPUProfile(pf); err != nil {
			slog.Warn("no CPU profile", "err", err)
		} else {
			defer stop()
		}
	}
	go func() {
		<-sig
		for i := 0; i < 50 && srv.Unmount() != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	srv.Wait()
	return nil
}

// openRedo makes the redo log of disk i for --rw and opens it for writing. A temporary one never has a
// name in the temporary folder (O_TMPFILE), so nothing is left even after kill -9; one at --redo PATH
// is listed in redos, to be removed at unmount unless --keep-redo.
func openRedo(c *cli.Context, disk string, i int, vopts vddk.Options, redos *[]string) (*vddk.Disk, error) {
	p := vddk.NumberedPath(c.String("redo"), i)
	d, err := vddk.OpenRedo(disk, p, vopts) // "": a temporary one, without a name
	if err == nil && p != "" {
		*redos = append(*redos, p)
	}
	return d, err
}

func cmdUmount(c *cli.Context) error {
	if c.NArg() != 1 {
		return cliutil.Usage(c, "umount needs one MOUNTPOINT")
	}
	return unmount(c.Args().First())
}

// unmount detaches a vmdkmount mount: it retries while the mount is busy, like guestunmount, and clears
// a stale mount left by a killed daemon ("Transport endpoint is not connected") lazily.
func unmount(dir string) error {
	tool := "fusermount3"
	if _, err := exec.LookPath(tool); err != nil {
		tool = "fusermount"
	}
	var out []byte
	var err error
	for i := 0; i < 20; i++ {
		out, err = exec.Command(tool, "-u", dir).CombinedOutput()
		if err == nil {
			return nil
		}
		msg := string(out)
		switch {
		case strings.Contains(msg, "not connected"):
			if out, err = exec.Command(tool, "-u", "-z", dir).CombinedOutput(); err == nil {
				return nil
			}
		case strings.Contains(msg, "busy"):
			time.Sleep(250 * time.Millisecond)
			continue
		}
		break
	}
	return fmt.Errorf("unmount %s: %s", dir, strings.TrimSpace(string(out)))
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// allowExternalFlag is --allow-external-extents, which the mount, list and inspect take alike.
func allowExternalFlag() cli.Flag {
	return &cli.BoolFlag{Name: "allow-external-extents", Usage: "let extents live outside the disk's folder, or on devices (a parent may anyway when it is a disk image)"}
}
