package vddk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
)

// RefuseUnread fails for a file that is not a VMDK and must not be read as a raw disk either: an image
// of another format (named), an empty file, or text. Each format gets its reader in its own package;
// until then it is refused here by name rather than mounted as raw bytes.
func RefuseUnread(path string) error {
	f, err := confine.OpenPath(path, os.O_RDONLY, true)
	if err != nil {
		return wrapErr(ErrFileNotFound, path, err, "open")
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return wrapErr(ErrFileError, path, err, "read")
	}
	head = head[:n]
	size, _ := f.Seek(0, io.SeekEnd)
	var tail [512]byte
	if size >= 1024 {
		f.ReadAt(tail[:], size-512)
	}
	switch name := foreignFormat(head, tail[:]); {
	case name != "":
		return fmt.Errorf("%s: a %s image, which vmdkmount does not read yet", path, name)
	case n == 0 && size == 0:
		return fmt.Errorf("%s: an empty file, not a disk image", path)
	case looksLikeText(head):
		return fmt.Errorf("%s: a text file, neither a disk image nor a VMDK descriptor", path)
	}
	return nil
}

// foreignFormat names the image format whose signature head (the first bytes) or tail (the last 512)
// carries, or returns "".
func foreignFormat(head, tail []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")) && len(head) >= 8:
		if binary.BigEndian.Uint32(head[4:]) == 1 {
			return "qcow"
		}
		return "qcow2"
	case bytes.HasPrefix(head, []byte("QED\x00")):
		return "QED"
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return "VHDX"
	case bytes.HasPrefix(head, []byte("conectix")), bytes.HasPrefix(tail, []byte("conectix")):
		return "VHD"
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f:
		return "VDI"
	case bytes.HasPrefix(head, []byte("WithoutFreeSpace")), bytes.HasPrefix(head, []byte("WithouFreSpacExt")):
		return "Parallels"
	}
	return ""
}
