package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/internal/wof"
)

// Reparse tags whose file data is not (or not only) in the unnamed $DATA.
const (
	tagHSM         = 0xC0000004
	tagHSM2        = 0x80000006
	tagSIS         = 0x80000007
	tagAppExecLink = 0x8000001B
	tagProjFS      = 0x9000001C
	tagStorageSync = 0x8000001E
	tagCloudMask   = 0xFFFF0FFF // cloud tags 0x9000001A, 0x9000101A … 0x9000F01A
	tagCloud       = 0x9000001A
)

// WOF reparse data: the provider after the 8-byte reparse header, then the file provider's
// version and algorithm.
const (
	wofProviderWIM  = 1
	wofProviderFile = 2
	wofStreamName   = "WofCompressedData"
)

// ReparseXattr names the extended attribute that reports a reparse point (or EFS encryption) this
// reader cannot read through: its value is the tag in hex and what it is.
const ReparseXattr = "user.vmdkmount.reparse"

// elsewhere describes the tags whose data lives outside the volume, or "".
func elsewhere(tag uint32) string {
	switch {
	case tag == tagDedup:
		return "Data Deduplication"
	case tag == tagHSM || tag == tagHSM2:
		return "HSM"
	case tag == tagSIS:
		return "Single Instance Storage"
	case tag == tagAppExecLink:
		return "AppExecLink"
	case tag == tagProjFS:
		return "ProjFS placeholder"
	case tag == tagStorageSync:
		return "Azure File Sync"
	case tag&tagCloudMask == tagCloud:
		return "cloud placeholder"
	}
	return ""
}

// unreadable says why the unnamed data of n cannot be read here ("" when it can): data behind a
// reparse point that is elsewhere, a WOF file backed by a WIM, or EFS encryption.
func (f *FS) unreadable(n *inode) string {
	if data := n.find(attrData, ""); data != nil && data.flags&attrFlagEncrypted != 0 {
		return "EFS-encrypted"
	}
	rp := n.find(attrReparsePoint, "")
	if rp == nil {
		return ""
	}
	v, err := f.attrValue(n.num, rp, 1<<16)
	if err != nil || len(v) < 4 {
		return ""
	}
	tag := binary.LittleEndian.Uint32(v)
	if tag == tagWOF {
		if _, err := parseWOF(v); err != nil {
			return fmt.Sprintf("%#08x WOF: %v", tag, err)
		}
		if n.find(attrData, wofStreamName) == nil {
			return fmt.Sprintf("%#08x WOF without its %s stream", tag, wofStreamName)
		}
		return ""
	}
	what := elsewhere(tag)
	// A hydrated placeholder keeps its tag but holds all its bytes; an AppExecLink never holds any
	// (its empty data is not the file Windows runs).
	if what == "" || tag != tagAppExecLink && f.fullyAllocated(n.find(attrData, "")) {
		return ""
	}
	return fmt.Sprintf("%#08x %s", tag, what)
}

// fullyAllocated reports whether a data attribute holds every byte of its value on the volume (an
// empty value counts: there is nothing missing to read).
func (f *FS) fullyAllocated(a *attribute) bool {
	if a == nil || a.resident || a.dataSize == 0 {
		return a == nil || a.dataSize == 0 || int64(len(a.value)) >= a.dataSize
	}
	cs := int64(f.boot.clusterSize)
	for _, r := range a.runs {
		if r.lcn < 0 && r.vcn*cs < a.dataSize {
			return false
		}
	}
	return true
}

// parseWOF returns the compression algorithm of a WOF reparse point's file provider.
func parseWOF(v []byte) (wof.Algorithm, error) {
	if len(v) < 16 {
		return 0, errors.New("reparse data truncated")
	}
	switch p := binary.LittleEndian.Uint32(v[12:]); p {
	case wofProviderFile:
	case wofProviderWIM:
		return 0, errors.New("data kept in an external WIM (WIM provider)")
	default:
		return 0, fmt.Errorf("unknown provider %d", p)
	}
	if len(v) < 24 {
		return 0, errors.New("file provider info truncated")
	}
	alg := wof.Algorithm(binary.LittleEndian.Uint32(v[20:]))
	if alg.ChunkSize() == 0 {
		return 0, fmt.Errorf("unknown compression %d", uint32(alg))
	}
	return alg, nil
}

// dataReader returns the reader of n's unnamed data: the WOF-decompressed view for a file
// compressed by Windows' WOF provider, nil when n keeps its data in the $DATA attribute, or an
// error wrapping errors.ErrUnsupported (and logged) when its data cannot be read here.
func (f *FS) dataReader(n *inode, name string) (io.ReaderAt, error) {
	if why := f.unreadable(n); why != "" {
		slog.Warn("ntfs: file data cannot be read here", "file", name, "record", n.num, "reason", why)
		return nil, fmt.Errorf("%w: %s", errors.ErrUnsupported, why)
	}
	rp := n.find(attrReparsePoint, "")
	if rp == nil || f.reparseTag(n) != tagWOF {
		return nil, nil
	}
	v, err := f.attrValue(n.num, rp, 1<<16)
	if err != nil {
		return nil, err
	}
	alg, err := parseWOF(v)
	if err != nil {
		return nil, err
	}
	cs := n.find(attrData, wofStreamName)
	s, err := f.newStream(n.num, cs)
	if err != nil {
		return nil, err
	}
	var size int64
	if d := n.find(attrData, ""); d != nil {
		size = d.dataSize
	}
	r, err := wof.NewReader(s, cs.dataSize, size, alg, wofCache{f.units, n.num})
	if err != nil {
		return nil, wrapAt(err, n.num)
	}
	return r, nil
}

// wofCache keeps a WOF file's decoded chunks in the volume's bounded compression-unit cache,
// under a key no attribute uses (the WOF tag as attribute type).
type wofCache struct {
	c   *fsys.LRU[unitKey, []byte]
	rec uint64
}

func (w wofCache) Get(k int64) ([]byte, bool) {
	return w.c.Get(unitKey{rec: w.rec, typ: tagWOF, unit: k})
}

func (w wofCache) Put(k int64, b []byte) {
	w.c.Put(unitKey{rec: w.rec, typ: tagWOF, unit: k}, b, len(b)+64)
}
