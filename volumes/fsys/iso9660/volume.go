// Package iso9660 reads ISO9660 images with Rock Ridge and Joliet extensions as an fsys.FS.
//
// Names and attributes are chosen the way the Linux kernel does: Rock Ridge when the root carries a
// SUSP "SP" entry, otherwise Joliet when a Joliet supplementary descriptor exists, otherwise plain
// ISO9660 names mapped as with the kernel's default map=normal (lower case, ";1" dropped).
//
// Inode numbers: the Rock Ridge PX file serial number when the image records one (RRIP 1.12, as
// xorriso writes it; hard links share it), otherwise the kernel's number: the byte position of the
// entry's directory record divided by 32, where a directory is represented by the "." record at the
// start of its own extent (a relocated directory keeps the position of its placeholder record).
//
// zisofs files (Rock Ridge ZF "pz") read decompressed and show their real size, as on Linux.
//
// Device numbers: Rock Ridge PN with a zero high word holds the whole dev_t; it is decoded with the
// kernel's 32-bit dev_t encoding (as xorriso writes it), which agrees with Linux for 16-bit values.
//
// It is a direct reader rather than a wrapper of go-diskfs: that library's files have no ReadAt and
// it exposes neither Rock Ridge device numbers nor TF timestamps, CL/RE relocation or multi-extent files.
package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrCorrupt is wrapped by every error that reports an inconsistent on-disk structure.
var ErrCorrupt = errors.New("iso9660: corrupt image")

const (
	sectorSize      = 2048
	firstDescriptor = 16
	maxDescriptors  = 64 // more than any real image carries before its terminator
)

// Volume descriptor types.
const (
	vdPrimary       = 1
	vdSupplementary = 2
	vdTerminator    = 255
)

// descriptor is what the reader needs from a primary or Joliet descriptor.
type descriptor struct {
	blockSize  uint32
	volumeSize uint32 // in logical blocks
	label      string
	root       []byte // the 34-byte root directory record
	joliet     bool
}

// readDescriptors scans the volume descriptor set and returns the primary and, when present, the
// Joliet supplementary descriptor.
func readDescriptors(r io.ReaderAt, size int64) (pvd, svd *descriptor, err error) {
	buf := make([]byte, sectorSize)
	for i := int64(0); i < maxDescriptors; i++ {
		off := (firstDescriptor + i) * sectorSize
		if off+sectorSize > size {
			return nil, nil, fmt.Errorf("%w: volume descriptor set runs past the image end", ErrCorrupt)
		}
		if _, err := r.ReadAt(buf, off); err != nil {
			return nil, nil, fmt.Errorf("iso9660: reading volume descriptor %d: %w", i, err)
		}
		d, typ, err := parseDescriptor(buf)
		if err != nil {
			return nil, nil, fmt.Errorf("volume descriptor %d: %w", i, err)
		}
		switch {
		case typ == vdTerminator:
			if pvd == nil {
				return nil, nil, fmt.Errorf("%w: no primary volume descriptor", ErrCorrupt)
			}
			return pvd, svd, nil
		case typ == vdPrimary && pvd == nil:
			pvd = d
		case typ == vdSupplementary && d.joliet && svd == nil:
			svd = d
		}
	}
	return nil, nil, fmt.Errorf("%w: no volume descriptor set terminator in %d descriptors", ErrCorrupt, maxDescriptors)
}

// parseDescriptor decodes one 2048-byte volume descriptor. Boot records (El Torito), partition
// descriptors and non-Joliet supplementary descriptors come back with d == nil or joliet false.
func parseDescriptor(b []byte) (d *descriptor, typ byte, err error) {
	if len(b) < sectorSize || string(b[1:6]) != "CD001" {
		return nil, 0, fmt.Errorf("%w: missing CD001 signature", ErrCorrupt)
	}
	typ = b[0]
	if typ != vdPrimary && typ != vdSupplementary {
		return nil, typ, nil
	}
	d = &descriptor{
		volumeSize: binary.LittleEndian.Uint32(b[80:]),
		blockSize:  uint32(binary.LittleEndian.Uint16(b[128:])),
		root:       b[156 : 156+34 : 156+34],
	}
	d.root = append([]byte(nil), d.root...)
	if typ == vdSupplementary {
		esc := b[88:120]
		d.joliet = bytes.HasPrefix(esc, []byte("%/@")) || bytes.HasPrefix(esc, []byte("%/C")) ||
			bytes.HasPrefix(esc, []byte("%/E"))
		if d.joliet {
			d.label = decodeUCS2(b[40:72])
		}
	} else {
		d.label = string(bytes.TrimRight(b[40:72], " \x00"))
	}
	if d.blockSize != sectorSize {
		// Every real image uses 2048; other sizes are legal but unseen, and the kernel refuses them too.
		return nil, typ, fmt.Errorf("%w: logical block size %d", ErrCorrupt, d.blockSize)
	}
	if d.root[0] != 34 {
		return nil, typ, fmt.Errorf("%w: root directory record length %d", ErrCorrupt, d.root[0])
	}
	return d, typ, nil
}
