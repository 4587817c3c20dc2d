package nbd

import "github.com/vmdkmount/vmdkmount/vddk"

// Importing this package lets vddk.Open read NBD URIs: as a disk of one raw link, and as the parent of a
// redo log made over the export.
func init() {
	vddk.RegisterRemote(IsURI, func(uri string) (vddk.Remote, error) { return Dial(uri, Options{}) })
}

// Allocated reports [off, off+n) in data and hole runs (vddk.Remote), from base:allocation.
func (d *Disk) Allocated(off, n int64, emit func(off, n int64, data bool)) error {
	ext, err := d.Extents(off, n)
	if err != nil {
		return err
	}
	for _, e := range ext {
		emit(e.Offset, e.Length, !e.Hole)
	}
	return nil
}

var _ vddk.Remote = (*Disk)(nil)
