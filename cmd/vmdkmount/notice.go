package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
)

// noticePrefix marks a line the background mount sends its caller to print before "ok".
const noticePrefix = "notice: "

// readyPipe is the pipe to a waiting caller (fd 3), made into a file once.
var readyPipe = sync.OnceValue(func() *os.File { return os.NewFile(3, "ready") })

// notice prints one line for the user: on standard error, or through the caller when in the background.
func notice(msg string) {
	if os.Getenv(daemonEnv) == "" {
		fmt.Fprintln(os.Stderr, "vmdkmount:", msg)
		return
	}
	fmt.Fprintf(readyPipe(), "%s%s\n", noticePrefix, msg)
}

// noticeATime says when reading the disks updates access times: O_NOATIME needs the file's owner.
func noticeATime(disks []volumes.Disk) {
	var touched []string
	for _, d := range disks {
		if vd, ok := d.(*vddk.Disk); ok {
			touched = append(touched, vd.AccessTimesTouched()...)
		}
	}
	switch len(touched) {
	case 0:
	case 1:
		notice(fmt.Sprintf("notice: %s is not yours, so reading it updates its access time (O_NOATIME needs the owner)", touched[0]))
	default:
		notice(fmt.Sprintf("notice: %d source files are not yours, so reading them updates their access times (O_NOATIME needs the owner), %s first", len(touched), touched[0]))
	}
}
