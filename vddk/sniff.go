package vddk

import (
	"bytes"
	"io"
)

// IsVMDK tells whether the file at path is a VMDK: a sparse extent header (KDMV, COWD, seSparse) or a
// text descriptor with extent lines. Raw disk images and flat extent files alone are not.
func IsVMDK(path string) (bool, error) {
	f, err := openFile(path, false)
	if err != nil {
		return false, err
	}
	defer f.Close()
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
	text, err := io.ReadAll(io.LimitReader(f, MaxDescriptorSize))
	if err != nil {
		return false, err
	}
	if bytes.Contains(text, []byte("# Disk DescriptorFile")) {
		return true, nil
	}
	_, err = ParseDescriptor(text)
	return err == nil, nil
}
