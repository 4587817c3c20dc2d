package fsys

// StreamFS is implemented by readers of filesystems whose entries carry named data streams beside
// their main data (NTFS alternate data streams). A FUSE layer opens them as FILE:STREAM, the syntax
// of Windows and of ntfs-3g's streams_interface=windows, whatever their size, and can list them as
// entries beside their file.
type StreamFS interface {
	// ListStreams names the named data streams of name (files and directories alike, not following
	// a final symlink), sorted by name.
	ListStreams(name string) ([]Stream, error)
	// OpenStream opens the named data stream of name (not following a final symlink).
	OpenStream(name, stream string) (File, error)
}

// Stream is one named data stream of an entry.
type Stream struct {
	Name string
	Size int64
}
