package btrfs

import (
	"bytes"
	"fmt"
	"log/slog"
)

const (
	csumObjectID = 1<<64 - 10 // EXTENT_CSUM_OBJECTID
	typeCsum     = 128        // EXTENT_CSUM_KEY
)

// dataSums returns the stored checksum of each sector of [addr, addr+n·sectorsize) from the checksum
// tree, nil for a sector without one (nodatasum files, preallocated space).
func (f *FS) dataSums(addr uint64, n int) ([][]byte, error) {
	sums := make([][]byte, n)
	if f.csums == nil {
		return sums, nil
	}
	ss := uint64(f.sb.sectorSize)
	width := uint64(len(mustSum(f.sb.csumType)))
	end := addr + uint64(n)*ss
	// From the item that starts at or before addr: it may cover addr.
	first := key{csumObjectID, typeCsum, 0}
	err := f.searchFloor(*f.csums, key{csumObjectID, typeCsum, addr}, func(k key, d []byte) (bool, error) {
		if k.less(first) {
			return true, nil
		}
		if k.objectid != csumObjectID || k.typ != typeCsum || k.offset >= end {
			return false, nil
		}
		i := uint64(0)
		if k.offset < addr {
			i = (addr - k.offset) / ss
		}
		for ; (i+1)*width <= uint64(len(d)); i++ {
			at := k.offset + i*ss
			if at >= end {
				break
			}
			if at >= addr && (at-addr)%ss == 0 {
				sums[(at-addr)/ss] = d[i*width : (i+1)*width]
			}
		}
		return true, nil
	})
	return sums, err
}

func mustSum(typ uint16) []byte {
	s, _ := checksum(typ, nil)
	return s
}

// readData fills p from logical address addr with file data, verified sector by sector against the
// checksum tree: a sector that fails is read again from the other copies (or parity rebuilds), and
// when none matches the read fails as damage, as the kernel's does.
func (f *FS) readData(p []byte, addr uint64) error {
	if len(p) == 0 {
		return nil
	}
	ss := uint64(f.sb.sectorSize)
	lo, hi := addr/ss*ss, (addr+uint64(len(p))+ss-1)/ss*ss
	buf := p
	if lo != addr || hi != addr+uint64(len(p)) {
		buf = make([]byte, hi-lo)
	}
	if err := f.cm.read(buf, lo); err != nil {
		return err
	}
	sums, err := f.dataSums(lo, int((hi-lo)/ss))
	if err != nil {
		return fmt.Errorf("checksum tree: %w", err)
	}
	for i, want := range sums {
		if want == nil {
			continue
		}
		sec := buf[uint64(i)*ss : uint64(i+1)*ss]
		if got, _ := checksum(f.sb.csumType, sec); bytes.Equal(got, want) {
			continue
		}
		if err := f.repairSector(sec, lo+uint64(i)*ss, want); err != nil {
			return err
		}
	}
	if &buf[0] != &p[0] {
		copy(p, buf[addr-lo:])
	}
	return nil
}

// repairSector reads the sector at addr from each other way until one matches its checksum.
func (f *FS) repairSector(sec []byte, addr uint64, want []byte) error {
	ways := f.cm.mirrors(addr)
	try := make([]byte, len(sec))
	for mirror := 0; mirror < ways; mirror++ {
		if f.cm.readMirror(try, addr, mirror) != nil {
			continue
		}
		if got, _ := checksum(f.sb.csumType, try); bytes.Equal(got, want) {
			slog.Warn("btrfs: data sector read from another copy", "logical", addr, "copy", mirror)
			copy(sec, try)
			return nil
		}
	}
	return fmt.Errorf("%w: data at logical %d fails its checksum in all %d copies", ErrCorrupt, addr, ways)
}
