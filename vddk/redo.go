package vddk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OpenRedo makes a redo log (a monolithicSparse child) over the disk parent and opens it for writing:
// at path, or, when path is "", one without a name in the temporary folder (CreateTemporaryChild:
// nothing is left behind, even after kill -9). A network disk parent (a URI) is reconnected by that
// URI; it and every other parent are only read.
func OpenRedo(parent, path string, opts Options) (*Disk, error) {
	if path == "" {
		return CreateTemporaryChild(parent, os.TempDir(), opts)
	}
	// Opened once made (and its parent with it): no second open to check it, as CreateChildWith makes,
	// which over a network parent would be one more connection.
	if err := createChild(parent, path, "", opts); err != nil {
		return nil, err
	}
	wopts := withRemoteParent(parent, opts)
	wopts.Writable = true
	d, err := Open(path, wopts)
	if err != nil {
		return nil, removeNewChild(path, "redo log", err)
	}
	return d, nil
}

// NumberedPath is the redo log path given once for several disks, for the i-th: PATH for the first,
// then PATH-1.EXT, PATH-2.EXT...
func NumberedPath(path string, i int) string {
	if i == 0 || path == "" {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), i, ext)
}
