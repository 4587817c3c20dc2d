package volumes

import (
	"io"

	"github.com/vmdkmount/vmdkmount/vddk"
	_ "github.com/vmdkmount/vmdkmount/vddk/nbd" // NBD URIs open as disks
)

// OpenFiles opens each path as a disk of the set — a VMDK (with its whole chain, through vddk) or a raw
// image — and finds the volumes. The returned closer closes every disk; call it after the set is done.
func OpenFiles(paths []string, vopts vddk.Options, opts Options) (*Set, io.Closer, error) {
	var closers multiCloser
	var disks []Disk
	for _, p := range paths {
		d, c, err := openDiskFile(p, vopts)
		if err != nil {
			closers.Close()
			return nil, nil, err
		}
		closers = append(closers, c)
		disks = append(disks, d)
	}
	set, err := Open(disks, opts)
	if err != nil {
		closers.Close()
		return nil, nil, err
	}
	return set, closers, nil
}

func openDiskFile(path string, vopts vddk.Options) (Disk, io.Closer, error) {
	isVMDK, err := vddk.IsDiskImage(path) // a network disk opens through vddk, as a raw link
	if err != nil {
		return nil, nil, err // names the file already
	}
	if isVMDK {
		d, err := vddk.Open(path, vopts)
		if err != nil {
			return nil, nil, err
		}
		return d, d, nil
	}
	// A raw image (IsDiskImage has refused the formats and files that must not be read as one): opened in one step, without blocking on a FIFO, without touching its access time.
	d, err := vddk.OpenRaw(path, vopts)
	if err != nil {
		return nil, nil, err
	}
	return d, d, nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
