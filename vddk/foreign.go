package vddk

// RefuseUnread fails for a file that is not a VMDK and must not be read as a raw disk either: an image
// of a format vmdkmount does not read (named), an empty file, or text. Images of the formats Open
// reads (qcow2, VHD, VHDX, VDI) are not refused.
func RefuseUnread(path string) error {
	_, err := DetectFormat(path)
	return err
}
