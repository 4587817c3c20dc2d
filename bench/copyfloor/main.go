// Command copyfloor copies a raw image to a new sparse file as cheaply as the kernel allows: its data
// ranges (SEEK_DATA) by sendfile, one copy inside the kernel, the holes left. No converter that writes
// the same file can beat it; bench/formats-cat.sh times it beside qemu-img and vmdk.
//
// Usage: copyfloor SRC OUT
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: copyfloor SRC OUT")
		os.Exit(2)
	}
	if err := copyData(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "copyfloor:", err)
		os.Exit(1)
	}
}

func copyData(srcPath, outPath string) error {
	src, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	sfd, ofd := int(src.Fd()), int(out.Fd())
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: no data past off
		}
		end, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := unix.Seek(ofd, data, 0); err != nil {
			return err
		}
		for off = data; off < end; {
			if _, err := unix.Sendfile(ofd, sfd, &off, int(min(end-off, 1<<30))); err != nil {
				return err
			}
		}
	}
	if err := out.Truncate(st.Size()); err != nil {
		return err
	}
	return out.Close()
}
