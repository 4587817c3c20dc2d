package fusefs

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// MountOptions are the FUSE-side options of a mount.
type MountOptions struct {
	AllowOther bool   // let other users (a scanner running as another user) read the mount
	Writable   bool   // raw files with a writer accept writes; trees stay read-only
	FsName     string // shown in /proc/mounts (the disk's path)
	Debug      bool
}

// cacheTimeout is how long the kernel may keep names and attributes: the data cannot change under a
// read-only mount, so long timeouts only save round trips.
const cacheTimeout = time.Hour

// Mount mounts a layout at dir and returns the running server; Unmount or Wait on it.
func Mount(dir string, l *Layout, o MountOptions) (*fuse.Server, error) {
	timeout := cacheTimeout
	if o.Writable {
		timeout = time.Second
	}
	opts := []string{"nosuid", "nodev", "default_permissions"}
	if !o.Writable {
		opts = append(opts, "ro")
	}
	lc := *l
	lc.noOpen = !o.Writable
	if abs, err := filepath.Abs(dir); err == nil {
		lc.mountPoint = abs
	}
	lc.primer = newPrimer()
	var rootAttr *fs.StableAttr
	if !l.SingleTree {
		rootAttr = &fs.StableAttr{Mode: syscall.S_IFDIR, Ino: synthIno(1)} // not 0: ls -i and find show it
	}
	srv, err := fs.Mount(dir, Root(&lc), &fs.Options{
		RootStableAttr:  rootAttr,
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		UID:             l.UID,
		GID:             l.GID,
		MountOptions: fuse.MountOptions{
			AllowOther:   o.AllowOther,
			FsName:       o.FsName,
			Name:         "vmdkmount",
			Options:      opts,
			MaxReadAhead: maxRequest(),
			MaxWrite:     maxRequest(),
			// Read-ahead goes out as background requests. At the kernel's default of 12 (congested at 9),
			// a window of more than a few requests was cut short and sequential reads stalled: an 8 MiB
			// window read a raw disk 1.5x slower than a 4 MiB one, and 16 MiB 2.5x slower.
			MaxBackground: maxBackground,
			Debug:         o.Debug,
			// A read-only tree's link targets never change: let the kernel keep them.
			EnableSymlinkCaching: !o.Writable,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	setReadAhead(dir, 4*maxRequest()>>10)
	return srv, nil
}

// maxBackground is how many background requests (read-ahead) the kernel may have outstanding with us.
const maxBackground = 64

// maxRequest is the largest READ or WRITE asked of us (go-fuse passes it as max_read too): 1 MiB, less
// what keeps a READ small enough to be spliced from a host file (see spliceLimit), so a raw disk's
// contiguous runs reach the reader without being copied through this process.
func maxRequest() int {
	n := min(spliceLimit(), 1<<20) &^ (os.Getpagesize() - 1)
	if n < 128<<10 {
		return 1 << 20
	}
	return n
}

// setReadAhead raises the mount's read-ahead through its backing device in sysfs (the kernel offers FUSE
// only 128 KiB at mount time, so sequential reads would come in 128 KiB requests). Only root may; for
// others the kernel's default stays, which is correct, only slower.
func setReadAhead(dir string, kb int) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(fmt.Sprint(kb)), 0); err != nil {
		slog.Debug("read-ahead left at the kernel's default", "path", p, "err", err)
	}
}
