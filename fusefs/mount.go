package fusefs

import (
	"fmt"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
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
	srv, err := fs.Mount(dir, Root(l), &fs.Options{
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
			MaxReadAhead: 1 << 20,
			MaxWrite:     1 << 20,
			Debug:        o.Debug,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return srv, nil
}
