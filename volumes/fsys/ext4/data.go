package ext4

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// errEncrypted refuses fscrypt-encrypted files, directories and links: without the key their bytes
// and names are ciphertext.
var errEncrypted = errors.New("encrypted (fscrypt) content cannot be read without its key")

// data is the byte stream of an inode: inline bytes or runs of blocks. It is immutable once built,
// so ReadAt needs no lock.
type data struct {
	f      *FS
	size   int64
	inline []byte // the whole stream when the inode keeps its data inline
	runs   []run  // sorted by logical block, not overlapping
}

// dataOf builds the block mapping of a regular file, directory or slow symlink.
func (f *FS) dataOf(in *inode) (*data, error) {
	if in.flags&flagEncrypt != 0 {
		return nil, fmt.Errorf("inode %d: %w", in.ino, errEncrypted)
	}
	d := &data{f: f, size: in.st.Size}
	switch {
	case in.flags&flagInlineData != 0:
		extra, err := f.inlineTail(in)
		if err != nil {
			return nil, err
		}
		d.inline = append(append([]byte(nil), in.block[:]...), extra...)
	case in.flags&flagExtents != 0:
		runs, err := f.extentRuns(in.block[:])
		if err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.ino, err)
		}
		d.runs = runs
	default:
		bs := uint64(f.sb.blockSize)
		limit := (uint64(in.st.Size) + bs - 1) / bs
		var walked map[uint64]bool
		if in.isDir() {
			walked = map[uint64]bool{}
		}
		runs, err := f.blockMapRunsOnce(in.block[:], limit, walked)
		if err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.ino, err)
		}
		d.runs = runs
	}
	return d, nil
}

// ReadAt reads the stream at off; holes and unwritten extents read as zeros without touching the disk.
func (d *data) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > d.size-off {
		p = p[:d.size-off]
	}
	if d.inline != nil {
		n := 0
		if off < int64(len(d.inline)) {
			n = copy(p, d.inline[off:])
		}
		clear(p[n:]) // the kernel reads past the inline bytes as zeros
	} else if err := d.readRuns(p, off); err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

func (d *data) readRuns(p []byte, off int64) error {
	bs := int64(d.f.sb.blockSize)
	for len(p) > 0 {
		blk := uint64(off / bs)
		within := off % bs
		// First run that ends after blk.
		i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].logical+d.runs[i].length > blk })
		if i == len(d.runs) || d.runs[i].logical > blk {
			// A hole up to the next run (or the end).
			n := int64(len(p))
			if i < len(d.runs) {
				n = min(n, int64(d.runs[i].logical)*bs-off)
			}
			clear(p[:n])
			p, off = p[n:], off+n
			continue
		}
		r := d.runs[i]
		n := min(int64(len(p)), int64(r.logical+r.length-blk)*bs-within)
		if r.unwritten {
			clear(p[:n])
		} else {
			phys := int64(r.physical+(blk-r.logical))*bs + within
			if phys+n > d.f.size {
				return fmt.Errorf("block %d lies outside the volume: %w", phys/bs, errCorrupt)
			}
			if _, err := d.f.r.ReadAt(p[:n], phys); err != nil {
				return fmt.Errorf("reading block %d: %w", phys/bs, err)
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}
