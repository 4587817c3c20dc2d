// Package qcow2 reads QEMU's qcow2 images (versions 2 and 3) without their refcounts: the L1/L2 tables,
// zlib and zstd compressed clusters, zero clusters, extended L2 entries (subclusters), external data
// files and the backing file's name. Encrypted images are refused by name. Nothing is ever written.
package qcow2

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/vmdkmount/vmdkmount/vddk/layer"
)

const (
	magic = "QFI\xfb"

	incDirty    = 1 << 0
	incCorrupt  = 1 << 1
	incDataFile = 1 << 2
	incCompType = 1 << 3
	incExtL2    = 1 << 4
	incKnown    = incDirty | incCorrupt | incDataFile | incCompType | incExtL2

	extEnd        = 0
	extBackingFmt = 0xe2792aca
	extFeatures   = 0x6803f857
	extEncryption = 0x0537be77
	extDataFile   = 0x44415441 // a raw data file (autoclear bit 1) is read through the L2 tables too

	offsetMask = 0x00fffffffffffe00 // host offset bits of L1 and standard L2 entries
	l2Compress = 1 << 62
	l2Copied   = 1 << 63
	l2Zero     = 1 << 0

	maxL1Bytes  = 32 << 20 // qemu's bound on the L1 table
	maxSize     = 1 << 60  // no real image comes near; keeps offset sums from overflowing
	maxBacking  = 1023
	subclusters = 32
)

// IsQcow2 tells whether a file's first bytes carry the qcow2 magic.
func IsQcow2(head []byte) bool { return len(head) >= 4 && string(head[:4]) == magic }

// Options are what the caller supplies beyond the file itself.
type Options struct {
	// OpenDataFile opens the external data file a v3 image names (the caller confines it like an
	// extent). Nil refuses such images.
	OpenDataFile func(name string) (io.ReaderAt, int64, error)
}

// Image is an opened qcow2 file: an io.ReaderAt-like layer, safe for concurrent use.
type Image struct {
	r, data      io.ReaderAt
	fileSize     int64
	dataSize     int64
	size         int64
	version      uint32
	clusterBits  uint
	clusterSize  int64
	extL2        bool
	entryBytes   int64 // 8, or 16 with extended L2
	l2Entries    int64 // entries per L2 table
	external     bool
	dataFileName string
	zstd         bool
	l1           []uint64
	l1Off        int64
	parent       layer.Parent
	l2cache      *layer.Cache
	clusterCache *layer.Cache
}

// Open parses the header and the L1 table of the qcow2 file r of fileSize bytes.
func Open(r io.ReaderAt, fileSize int64, opts Options) (*Image, error) {
	hdr := make([]byte, min(fileSize, 4096))
	if err := layer.ReadFull(r, hdr, 0, "qcow2 header"); err != nil {
		return nil, err
	}
	if len(hdr) < 72 || !IsQcow2(hdr) {
		return nil, fmt.Errorf("not a qcow2 image: no magic or a header shorter than 72 bytes")
	}
	be := binary.BigEndian
	im := &Image{r: r, data: r, fileSize: fileSize, dataSize: fileSize}
	im.version = be.Uint32(hdr[4:])
	if im.version != 2 && im.version != 3 {
		return nil, layer.Unsupported("qcow2 version %d (only 2 and 3 exist)", im.version)
	}
	backingOff, backingLen := be.Uint64(hdr[8:]), be.Uint32(hdr[16:])
	cb := be.Uint32(hdr[20:])
	if cb < 9 || cb > 21 {
		return nil, fmt.Errorf("qcow2 cluster_bits %d out of range 9..21", cb)
	}
	im.clusterBits, im.clusterSize = uint(cb), 1<<cb
	size := be.Uint64(hdr[24:])
	if size > maxSize {
		return nil, fmt.Errorf("qcow2 virtual size %d is implausibly large", size)
	}
	im.size = int64(size)
	switch crypt := be.Uint32(hdr[32:]); crypt {
	case 0:
	case 1:
		return nil, layer.Unsupported("an encrypted qcow2 image (AES), which vmdkmount does not read")
	case 2:
		return nil, layer.Unsupported("an encrypted qcow2 image (LUKS), which vmdkmount does not read")
	default:
		return nil, layer.Unsupported("an encrypted qcow2 image (method %d), which vmdkmount does not read", crypt)
	}
	l1Size, l1Off := be.Uint32(hdr[36:]), be.Uint64(hdr[40:])
	hdrLen := uint32(72)
	var incompat uint64
	compType := byte(0)
	if im.version == 3 {
		if len(hdr) < 104 {
			return nil, fmt.Errorf("qcow2 v3 header is truncated (%d bytes)", len(hdr))
		}
		incompat = be.Uint64(hdr[72:])
		hdrLen = be.Uint32(hdr[100:])
		if hdrLen < 104 || int64(hdrLen) > min(im.clusterSize, int64(len(hdr))) {
			return nil, fmt.Errorf("qcow2 header_length %d out of range", hdrLen)
		}
		if hdrLen > 104 {
			compType = hdr[104]
		}
		if unknown := incompat &^ incKnown; unknown != 0 {
			return nil, layer.Unsupported("qcow2 incompatible features %#x, which vmdkmount does not know", unknown)
		}
	}
	switch {
	case compType == 0 && incompat&incCompType == 0:
	case compType == 1 && incompat&incCompType != 0:
		im.zstd = true
	case compType > 1:
		return nil, layer.Unsupported("qcow2 compression type %d", compType)
	default:
		return nil, fmt.Errorf("qcow2 compression type %d disagrees with the compression-type feature bit", compType)
	}
	im.extL2 = incompat&incExtL2 != 0
	im.entryBytes = 8
	if im.extL2 {
		if cb < 14 {
			return nil, fmt.Errorf("qcow2 extended L2 entries need clusters of 16 KiB or more, not %d bytes", im.clusterSize)
		}
		im.entryBytes = 16
	}
	im.l2Entries = im.clusterSize / im.entryBytes
	im.external = incompat&incDataFile != 0

	// Header extensions: the backing format, the external data file's name.
	for off := int64(hdrLen); off+8 <= min(im.clusterSize, int64(len(hdr))); {
		typ, n := be.Uint32(hdr[off:]), int64(be.Uint32(hdr[off+4:]))
		off += 8
		if typ == extEnd {
			break
		}
		if n > int64(len(hdr))-off {
			return nil, fmt.Errorf("qcow2 header extension %#x of %d bytes runs past the header cluster", typ, n)
		}
		body := hdr[off : off+n]
		switch typ {
		case extBackingFmt:
			im.parent.Format = string(body)
		case extDataFile:
			im.dataFileName = string(body)
		case extEncryption:
			return nil, layer.Unsupported("an encrypted qcow2 image, which vmdkmount does not read")
		}
		off += (n + 7) &^ 7
	}
	if backingOff != 0 {
		if backingLen == 0 || backingLen > maxBacking || backingOff >= uint64(im.clusterSize) || int64(backingOff)+int64(backingLen) > int64(len(hdr)) {
			return nil, fmt.Errorf("qcow2 backing file name (%d bytes at %d) lies outside the header cluster", backingLen, backingOff)
		}
		im.parent.Name = string(hdr[backingOff : backingOff+uint64(backingLen)])
		if strings.IndexByte(im.parent.Name, 0) >= 0 {
			return nil, fmt.Errorf("qcow2 backing file name holds a NUL byte")
		}
	}
	if im.external {
		if im.dataFileName == "" {
			return nil, fmt.Errorf("qcow2 image uses an external data file but does not name it")
		}
		if opts.OpenDataFile == nil {
			return nil, layer.Unsupported("qcow2 external data file %q", im.dataFileName)
		}
		d, n, err := opts.OpenDataFile(im.dataFileName)
		if err != nil {
			return nil, fmt.Errorf("qcow2 external data file %q: %w", im.dataFileName, err)
		}
		im.data, im.dataSize = d, n
	}

	// The L1 table: as many entries as the virtual size needs, lying inside the file.
	span := im.clusterSize * im.l2Entries
	need := (im.size + span - 1) / span
	if int64(l1Size) < need {
		return nil, fmt.Errorf("qcow2 L1 table has %d entries, the virtual size needs %d", l1Size, need)
	}
	if need*8 > maxL1Bytes {
		return nil, fmt.Errorf("qcow2 L1 table of %d entries is larger than any qemu writes", need)
	}
	if need > 0 {
		if l1Off%uint64(im.clusterSize) != 0 || l1Off == 0 || l1Off > uint64(fileSize) || uint64(need*8) > uint64(fileSize)-l1Off {
			return nil, fmt.Errorf("qcow2 L1 table (%d entries at byte %d) lies outside the %d-byte file or is misaligned", need, l1Off, fileSize)
		}
		raw := make([]byte, need*8)
		if err := layer.ReadFull(r, raw, int64(l1Off), "qcow2 L1 table"); err != nil {
			return nil, err
		}
		im.l1, im.l1Off = make([]uint64, need), int64(l1Off)
		for i := range im.l1 {
			im.l1[i] = be.Uint64(raw[i*8:])
		}
	}
	// 32 MiB of L2 tables, at least 16; 16 MiB of inflated clusters, at least 4.
	im.l2cache = layer.NewCache(max(16, int((32<<20)/im.clusterSize)))
	im.clusterCache = layer.NewCache(max(4, int((16<<20)/im.clusterSize)))
	return im, nil
}

// Size is the virtual disk's size in bytes.
func (im *Image) Size() int64 { return im.size }

// Close releases nothing: the caller owns the files.
func (im *Image) Close() error { return nil }

// Describe says what the image is.
func (im *Image) Describe() layer.Description {
	v := fmt.Sprintf("v%d", im.version)
	if im.extL2 {
		v += ", extended L2"
	}
	if im.zstd {
		v += ", zstd"
	}
	if im.external {
		v += ", data file " + im.dataFileName
	}
	return layer.Description{Format: "qcow2", Variant: v, BlockSize: im.clusterSize, Compressed: im.zstd, Parent: im.parent}
}

// Parent names the backing file, if any.
func (im *Image) Parent() layer.Parent { return im.parent }
