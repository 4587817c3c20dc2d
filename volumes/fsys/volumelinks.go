package fsys

// VolumeLinker is implemented by readers whose symlinks may name a path of the volume itself rather
// than of the guest's root: NTFS junctions and absolute Windows symlinks (\??\C:\Users), which
// ReadLink returns as "/Users" once the drive is dropped. A FUSE layer shows such a target under
// the volume's own directory in the mount, as ntfs-3g shows it under its mount point, so that it
// never resolves to a path of the host. Other absolute targets (a Linux guest's /etc/…, ntfs-3g's
// own Unix symlinks) stay as stored.
type VolumeLinker interface {
	// VolumeRooted reports whether the symlink name (not followed) has a volume-rooted target.
	VolumeRooted(name string) bool
}
