package main

import (
	"fmt"
	"os"

	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
)

// notice prints one line for the user on standard error (the caller's, until a background mount is up).
func notice(msg string) {
	fmt.Fprintln(os.Stderr, "vmdkmount:", msg)
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
