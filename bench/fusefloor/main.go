// Command fusefloor mounts a file whose reads cost the daemon nothing: the fastest any FUSE daemon with
// our mount options could serve a sequential read here. bench/mount-read.sh times cat of it beside
// the real mounts, so the ratios against libvmdk can be read against what the kernel side alone costs.
//
// Usage: fusefloor SIZE-MiB MOUNTPOINT (runs until SIGINT/SIGTERM, then unmounts)
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vmdkmount/vmdkmount/fusefs"
)

// nothing answers every read with whatever the buffer holds: no source, no copy.
type nothing struct{}

func (nothing) ReadAt(p []byte, off int64) (int, error) { return len(p), nil }

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: fusefloor SIZE-MiB MOUNTPOINT")
		os.Exit(2)
	}
	mib, err := strconv.ParseInt(os.Args[1], 10, 64)
	if err != nil || mib <= 0 {
		fmt.Fprintf(os.Stderr, "fusefloor: bad size %q\n", os.Args[1])
		os.Exit(2)
	}
	l := &fusefs.Layout{
		Raw:  []fusefs.RawSource{{Name: "disk", R: nothing{}, Size: mib << 20}},
		Time: time.Now(),
		UID:  uint32(os.Getuid()),
		GID:  uint32(os.Getgid()),
	}
	srv, err := fusefs.Mount(os.Args[2], l, fusefs.MountOptions{FsName: "fusefloor"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusefloor:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; _ = srv.Unmount() }()
	srv.Wait()
}
