package volumes

import (
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/ext4"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/xfs"
)

func openExt4(v *Volume, _ TreeOptions) (fsys.FS, error) {
	return ext4.OpenWith(v, v.Size(), ext4.Options{NoReplay: v.noReplay})
}

func openXFS(v *Volume, _ TreeOptions) (fsys.FS, error) {
	return xfs.OpenWith(v, v.Size(), xfs.Options{NoReplay: v.noReplay})
}

// State is what the tree's reader found about the volume's consistency: "clean" for readers that
// keep no journal, log or dirty flag to look at.
func State(t fsys.FS) fsys.VolumeState {
	if r, ok := t.(fsys.StateReporter); ok {
		return r.VolumeState()
	}
	return fsys.VolumeState{State: fsys.StateClean}
}

// View is the bytes a volume's tree t reads: the replayed journal or log over the volume when the
// reader replayed one (an overlay; the volume itself is never written), else the volume.
func (v *Volume) View(t fsys.FS) io.ReaderAt {
	if r, ok := t.(interface{ Reader() io.ReaderAt }); ok {
		return r.Reader()
	}
	return v
}
