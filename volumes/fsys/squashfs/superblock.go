// Package squashfs reads squashfs 4.0 images (the format the Linux kernel mounts) as an fsys.FS.
//
// It is a direct reader rather than a wrapper of go-diskfs: that library's files have no ReadAt, and its
// Stat lacks nlink, device numbers and the setuid/setgid/sticky bits, which a FUSE layer needs.
package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error that reports an inconsistent on-disk structure.
var ErrCorrupt = errors.New("squashfs: corrupt image")

// ErrUnsupported is wrapped by errors for valid images using a feature this reader lacks.
var ErrUnsupported = errors.New("squashfs: unsupported feature")

const (
	superblockSize = 96
	magic          = 0x73717368 // "hsqs" little-endian
	noTable        = ^uint64(0)
	metaBlockSize  = 8192
	maxBlockSize   = 1 << 20 // the format's largest data block (block_log at most 20, checked below)
)

// Superblock flags used by the reader.
const (
	flagNoXattrs          = 0x0200
	flagCompressorOptions = 0x0400
)

// Compressor ids, as mksquashfs writes them.
const (
	compGzip = 1
	compLzma = 2
	compLzo  = 3
	compXz   = 4
	compLz4  = 5
	compZstd = 6
)

type superblock struct {
	inodeCount       uint32
	modTime          uint32
	blockSize        uint32
	fragCount        uint32
	compressor       uint16
	blockLog         uint16
	flags            uint16
	idCount          uint16
	rootInode        uint64
	bytesUsed        uint64
	idTableStart     uint64
	xattrTableStart  uint64
	inodeTableStart  uint64
	dirTableStart    uint64
	fragTableStart   uint64
	exportTableStart uint64
}

// parseSuperblock decodes and sanity-checks the superblock against the image size.
func parseSuperblock(b []byte, size int64) (*superblock, error) {
	if len(b) < superblockSize {
		return nil, fmt.Errorf("%w: superblock truncated (%d bytes)", ErrCorrupt, len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != magic {
		return nil, fmt.Errorf("%w: bad magic %#x", ErrCorrupt, m)
	}
	sb := &superblock{
		inodeCount:       le.Uint32(b[4:]),
		modTime:          le.Uint32(b[8:]),
		blockSize:        le.Uint32(b[12:]),
		fragCount:        le.Uint32(b[16:]),
		compressor:       le.Uint16(b[20:]),
		blockLog:         le.Uint16(b[22:]),
		flags:            le.Uint16(b[24:]),
		idCount:          le.Uint16(b[26:]),
		rootInode:        le.Uint64(b[32:]),
		bytesUsed:        le.Uint64(b[40:]),
		idTableStart:     le.Uint64(b[48:]),
		xattrTableStart:  le.Uint64(b[56:]),
		inodeTableStart:  le.Uint64(b[64:]),
		dirTableStart:    le.Uint64(b[72:]),
		fragTableStart:   le.Uint64(b[80:]),
		exportTableStart: le.Uint64(b[88:]),
	}
	if major, minor := le.Uint16(b[28:]), le.Uint16(b[30:]); major != 4 || minor != 0 {
		return nil, fmt.Errorf("%w: version %d.%d (only 4.0)", ErrUnsupported, major, minor)
	}
	if sb.blockLog < 12 || sb.blockLog > 20 || sb.blockSize != 1<<sb.blockLog {
		return nil, fmt.Errorf("%w: block size %d with log %d", ErrCorrupt, sb.blockSize, sb.blockLog)
	}
	if sb.bytesUsed < superblockSize || sb.bytesUsed > uint64(size) {
		return nil, fmt.Errorf("%w: bytes_used %d outside image of %d bytes", ErrCorrupt, sb.bytesUsed, size)
	}
	if sb.inodeTableStart >= sb.bytesUsed || sb.dirTableStart >= sb.bytesUsed ||
		sb.inodeTableStart > sb.dirTableStart {
		return nil, fmt.Errorf("%w: inode table %d / directory table %d outside %d bytes",
			ErrCorrupt, sb.inodeTableStart, sb.dirTableStart, sb.bytesUsed)
	}
	if sb.idCount == 0 || sb.idTableStart >= sb.bytesUsed {
		return nil, fmt.Errorf("%w: id table (%d ids at %d)", ErrCorrupt, sb.idCount, sb.idTableStart)
	}
	for _, t := range []uint64{sb.fragTableStart, sb.xattrTableStart} {
		if t != noTable && t >= sb.bytesUsed {
			return nil, fmt.Errorf("%w: table start %d beyond %d bytes", ErrCorrupt, t, sb.bytesUsed)
		}
	}
	return sb, nil
}
