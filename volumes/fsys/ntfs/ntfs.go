// Package ntfs reads NTFS volumes as an fsys.FS: names from the $I30 indexes (so every hard link is
// listed under its own name), resident, non-resident, sparse and LZNT1-compressed data, attribute
// lists, alternate data streams as user.* extended attributes, and symlinks both as reparse points
// and as the Interix files ntfs-3g writes. The view matches what ntfs-3g shows when mounted with
// streams_interface=xattr by root: uid and gid 0, mode 0777, directory link count 1.
//
// Open returns an fsys.FS whose dynamic type is *FS; assert to it for OpenStream (alternate data
// streams by name). Lookups are case-sensitive like ntfs-3g's unless Options.IgnoreCase is set.
// Files compressed by Windows' WOF provider (CompactOS: XPRESS4K/8K/16K, LZX) read decompressed;
// files whose data lives elsewhere (WIM-backed WOF, deduplication, cloud placeholders, HSM) or is
// EFS-encrypted fail to open with errors.ErrUnsupported and carry the ReparseXattr attribute.
//
// It is written from the format rather than on go-ntfs: that library lists hard links under the
// wrong names, serialises every read behind one mutex and panics on damaged run lists, while this
// reader reads concurrently with bounded caches.
package ntfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Options tune what Open shows.
type Options struct {
	// ShowSystemFiles lists the metadata files ($MFT, $LogFile, …, $Extend) in the root, as
	// ntfs-3g's show_sys_files does. They are hidden by default.
	ShowSystemFiles bool
	// IgnoreCase lets a lookup that finds no exact name match a name that differs only in case
	// (through the volume's $UpCase table), as Windows does. ntfs-3g's default is case-sensitive.
	IgnoreCase bool
}

// Cache budgets: enough for a walk of a large volume, small enough to stay bounded.
const (
	inodeCacheEntries = 8192
	dirCacheBytes     = 16 << 20
	unitCacheBytes    = 8 << 20
	mftCacheBytes     = 8 << 20
)

// FS is an open NTFS volume. It is safe for concurrent use.
type FS struct {
	r             io.ReaderAt
	size          int64
	opt           Options
	boot          bootSector
	totalClusters int64
	mft           *stream
	mftRecords    uint64

	inodes    *fsys.LRU[uint64, *inode]
	mftChunks *fsys.LRU[uint64, []byte]
	dirs      *fsys.LRU[uint64, []dirEntry]
	units     *fsys.LRU[unitKey, []byte]

	upcaseOnce sync.Once
	upcase     []uint16

	usageOnce sync.Once
	usage     fsys.Usage

	stateOnce sync.Once
	state     fsys.VolumeState
}

var _ fsys.FS = (*FS)(nil)

// Open reads the boot sector and $MFT of the NTFS volume held in r (size bytes).
func Open(r io.ReaderAt, size int64, opt Options) (_ fsys.FS, err error) {
	defer guard(&err)
	return open(r, size, opt)
}

func open(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	if size < 512 {
		return nil, corrupt("volume of %d bytes is too small for a boot sector", size)
	}
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, wrapIO(err, "boot sector")
	}
	bs, err := parseBoot(b)
	if err != nil {
		return nil, err
	}
	if uint64(size)/uint64(bs.sectorSize) < bs.totalSectors {
		return nil, corrupt("volume of %d bytes is smaller than the %d sectors its boot sector claims", size, bs.totalSectors)
	}
	f := &FS{
		r: r, size: size, opt: opt, boot: bs,
		totalClusters: int64(bs.totalSectors / uint64(bs.clusterSize/bs.sectorSize)),
		inodes:        fsys.NewLRU[uint64, *inode](inodeCacheEntries),
		mftChunks:     fsys.NewLRU[uint64, []byte](mftCacheBytes),
		dirs:          fsys.NewLRU[uint64, []dirEntry](dirCacheBytes),
		units:         fsys.NewLRU[unitKey, []byte](unitCacheBytes),
	}
	if err := f.loadMFT(); err != nil {
		return nil, err
	}
	root, err := f.inode(recRoot)
	if err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	if !root.isDir() {
		return nil, corrupt("MFT record 5 (root) is not a directory")
	}
	return f, nil
}

// loadMFT bootstraps $MFT: record 0 is read at the boot sector's cluster; its own run list (first
// from the base record alone, then merged with its extension records) maps every other record.
func (f *FS) loadMFT() error {
	raw, first, err := f.readMFTRecord0(f.boot.mftCluster)
	if err != nil {
		// Windows keeps a copy of the first records in $MFTMirr for exactly this case.
		var mirrErr error
		if raw, first, mirrErr = f.readMFTRecord0(f.boot.mftMirrCluster); mirrErr != nil {
			return err
		}
		slog.Warn("ntfs: $MFT record 0 is damaged, using its copy in $MFTMirr", "err", err)
	}
	var data *attribute
	for _, a := range first.attrs {
		if a.typ == attrData && a.name == "" && !a.resident && a.startVCN == 0 {
			data = a
			break
		}
	}
	if data == nil {
		return corrupt("$MFT record 0 has no non-resident $DATA")
	}
	if err := f.setMFT(data, min(data.dataSize, (data.lastVCN+1)*int64(f.boot.clusterSize))); err != nil {
		return err
	}
	n, err := f.buildInode(recMFT, raw, f.readRecord)
	if err != nil {
		return fmt.Errorf("$MFT: %w", err)
	}
	full := n.find(attrData, "")
	if full == nil || full.resident {
		return corrupt("$MFT has no non-resident $DATA")
	}
	return f.setMFT(full, full.dataSize)
}

// readMFTRecord0 reads and parses the $MFT base record at a cluster (the $MFT or its mirror).
func (f *FS) readMFTRecord0(cluster uint64) ([]byte, *mftRecord, error) {
	raw := make([]byte, f.boot.recordSize)
	if cluster >= uint64(f.totalClusters) {
		return nil, nil, corrupt("$MFT record 0 at cluster %d beyond the volume", cluster)
	}
	if _, err := f.r.ReadAt(raw, int64(cluster)*int64(f.boot.clusterSize)); err != nil {
		return nil, nil, wrapIO(err, "$MFT record 0")
	}
	rec, err := parseRecord(append([]byte(nil), raw...))
	if err != nil {
		return nil, nil, fmt.Errorf("$MFT record 0: %w", err)
	}
	return raw, rec, nil
}

func (f *FS) setMFT(a *attribute, bytes int64) error {
	if a.dataSize > f.size || bytes < 0 {
		return corrupt("$MFT of %d bytes is larger than the volume", a.dataSize)
	}
	s, err := f.newStream(recMFT, a)
	if err != nil {
		return err
	}
	f.mft = s
	f.mftRecords = uint64(bytes / int64(f.boot.recordSize))
	f.mftChunks.Clear() // chunks read through a partial run list may be short
	if f.mftRecords <= recRoot {
		return corrupt("$MFT holds only %d records", f.mftRecords)
	}
	return nil
}

// Usage reports cluster size, cluster counts (free ones from $Bitmap) and the label from $Volume.
func (f *FS) Usage() fsys.Usage {
	f.usageOnce.Do(func() {
		u := fsys.Usage{
			BlockSize: f.boot.clusterSize,
			Blocks:    uint64(f.totalClusters),
			NameMax:   255,
			UUID:      fmt.Sprintf("%016X", f.boot.serial),
		}
		if free, err := f.freeClusters(); err == nil {
			u.FreeBlocks = free
			u.Files, u.FreeFiles = f.fileCounts(free)
		}
		if vol, err := f.inode(recVolume); err == nil {
			if a := vol.find(attrVolumeName, ""); a != nil && a.resident {
				u.Label = decodeUTF16(a.value)
			}
		}
		f.usage = u
	})
	return f.usage
}

// fileCounts reports inode totals the way ntfs-3g's statfs does: the records $MFT's bitmap covers
// plus as many more as the free space could hold, and of those the ones free.
func (f *FS) fileCounts(freeClusters uint64) (files, free uint64) {
	n, err := f.inode(recMFT)
	if err != nil {
		return 0, 0
	}
	bm := n.find(attrBitmap, "")
	// One bit per record: a bitmap far larger than $MFT needs is damage, not something to scan.
	if bm == nil || uint64(bm.allocSize) > f.mftRecords/8+1<<20 {
		return 0, 0
	}
	s, err := f.newStream(recMFT, bm)
	if err != nil {
		return 0, 0
	}
	room := freeClusters
	if cb, rb := bits.TrailingZeros32(f.boot.clusterSize), bits.TrailingZeros32(f.boot.recordSize); cb >= rb {
		room <<= cb - rb
	} else {
		room >>= rb - cb
	}
	slots := uint64(bm.allocSize) * 8
	used, err := countSetBits(s, slots)
	if err != nil {
		return 0, 0
	}
	return slots + room, room + slots - used
}

// freeClusters counts the clear bits of $Bitmap over the volume's clusters.
func (f *FS) freeClusters() (uint64, error) {
	n, err := f.inode(recBitmap)
	if err != nil {
		return 0, err
	}
	a := n.find(attrData, "")
	if a == nil {
		return 0, corrupt("$Bitmap has no data")
	}
	s, err := f.newStream(recBitmap, a)
	if err != nil {
		return 0, err
	}
	total := uint64(f.totalClusters)
	used, err := countSetBits(s, total)
	if err != nil {
		return 0, err
	}
	if used > total {
		used = total
	}
	return total - used, nil
}

// Close drops the caches. The reader stays open: it belongs to the caller.
func (f *FS) Close() error {
	f.inodes.Clear()
	f.mftChunks.Clear()
	f.dirs.Clear()
	f.units.Clear()
	return nil
}

// countSetBits counts the set bits among the first nbits of a bitmap stream (missing bytes are clear).
func countSetBits(s *stream, nbits uint64) (uint64, error) {
	used := uint64(0)
	buf := make([]byte, 1<<16)
	for off := uint64(0); off*8 < nbits; off += uint64(len(buf)) {
		k, err := s.ReadAt(buf, int64(off))
		if err != nil && err != io.EOF {
			return 0, err
		}
		for i := 0; i < k; i += 8 {
			bitBase := (off + uint64(i)) * 8
			if bitBase >= nbits {
				break
			}
			var w uint64
			if i+8 <= k {
				w = binary.LittleEndian.Uint64(buf[i:])
			} else {
				for j := k - 1; j >= i; j-- {
					w = w<<8 | uint64(buf[j])
				}
			}
			if rem := nbits - bitBase; rem < 64 {
				w &= 1<<rem - 1
			}
			used += uint64(bits.OnesCount64(w))
		}
		if k < len(buf) {
			break
		}
	}
	return used, nil
}
