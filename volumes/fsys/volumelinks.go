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

// LinkVolumer is implemented by VolumeLinker readers whose volume-rooted targets may name another
// volume of the guest (\??\D:\x, \??\Volume{GUID}\x). A FUSE layer that knows which of its trees
// the guest calls that name points the link there instead.
type LinkVolumer interface {
	// LinkVolume returns, for the volume-rooted symlink name (not followed), the guest's name of
	// the volume its target is on ("D:", "Volume{GUID}"; opaque to the caller) and the target as a
	// slash-separated path relative to that volume's root. ok is false when it names no volume.
	LinkVolume(name string) (volume, rel string, ok bool)
}

// PathFolder is implemented by readers whose guests find names ignoring case (Windows): FoldPath
// returns the stored spelling of the existing path p, or ok false when there is none.
type PathFolder interface {
	FoldPath(p string) (string, bool)
}
