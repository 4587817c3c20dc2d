package vddk

import (
	"bytes"
	"io"
	"os"

	"github.com/vmdkmount/vmdkmount/vddk/internal/confine"
)

// IsVMDK tells whether the file at path is a VMDK: a sparse extent header (KDMV, COWD, seSparse) or a
// text descriptor with extent lines. Raw disk images and flat extent files alone are not. Anything but
// a regular file or a block device (a FIFO, a socket, a folder) is refused at once, without blocking.
func IsVMDK(path string) (bool, error) {
	f, err := confine.OpenPath(path, os.O_RDONLY, true)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return isVMDKFile(f)
}

// isVMDKFile is IsVMDK of an opened file.
func isVMDKFile(f *os.File) (bool, error) {
	head := make([]byte, 4096)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	head = head[:n]
	if sniff(head) != "" {
		return true, nil
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() > MaxDescriptorSize || !looksLikeText(head) {
		return false, nil
	}
	text, err := io.ReadAll(io.NewSectionReader(f, 0, MaxDescriptorSize))
	if err != nil {
		return false, err
	}
	if bytes.Contains(text, []byte("# Disk DescriptorFile")) {
		return true, nil
	}
	_, err = ParseDescriptor(text)
	return err == nil, nil
}
