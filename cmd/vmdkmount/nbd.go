package main

import (
	"fmt"

	"github.com/vmdkmount/vmdkmount/vddk/nbd"
)

// openNBD opens an NBD URI given as a DISK: read-only, as the export is a disk of someone else's.
func openNBD(uri string, writable bool) (*nbd.Disk, error) {
	if writable {
		return nil, fmt.Errorf("--rw needs a VMDK file: an NBD export is mounted read-only")
	}
	return nbd.Dial(uri, nbd.Options{})
}
