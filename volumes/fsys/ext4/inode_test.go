package ext4

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawInode builds a 256-byte inode record with the given mode, i_blocks and flags.
func rawInode(mode uint16, blocksLo uint32, blocksHi uint16, flags uint32) []byte {
	b := make([]byte, 256)
	le := binary.LittleEndian
	le.PutUint16(b[0:], mode)
	le.PutUint16(b[26:], 1)
	le.PutUint32(b[28:], blocksLo)
	le.PutUint32(b[32:], flags)
	le.PutUint16(b[116:], blocksHi)
	le.PutUint16(b[128:], 32)
	return b
}

func TestHugeFileBlockCount(t *testing.T) {
	sb := &superblock{blockSize: 4096, inodeSize: 256, roCompat: roCompatHugeFile}
	cases := []struct {
		flags    uint32
		hi       uint16
		roCompat uint32
		want     int64
	}{
		{0, 0, roCompatHugeFile, 8 * 512},             // 512-byte sectors
		{0, 1, roCompatHugeFile, (1<<32 + 8) * 512},   // 48-bit sector count
		{flagHugeFile, 0, roCompatHugeFile, 8 * 4096}, // counted in filesystem blocks
		{flagHugeFile, 1, roCompatHugeFile, (1<<32 + 8) * 4096},
		{0, 1, 0, 8 * 512}, // without the feature the high half is ignored
	}
	for _, c := range cases {
		sb.roCompat = c.roCompat
		in, err := parseInode(sb, 12, rawInode(0o100644, 8, c.hi, c.flags))
		if err != nil {
			t.Fatal(err)
		}
		if in.st.AllocatedSize != c.want {
			t.Errorf("flags %#x hi %d feature %#x: %d bytes, want %d", c.flags, c.hi, c.roCompat, in.st.AllocatedSize, c.want)
		}
	}
}

func TestDeviceEncodings(t *testing.T) {
	le := binary.LittleEndian
	old := make([]byte, 60)
	le.PutUint32(old[0:], 8<<8|1) // old 16-bit encoding in i_block[0]
	if got := decodeDev(old); got != unix.Mkdev(8, 1) {
		t.Errorf("old encoding: %d:%d", unix.Major(got), unix.Minor(got))
	}
	// New encoding in i_block[1]: minor low byte, major, minor high bits.
	major, minor := uint32(300), uint32(70000)
	nw := make([]byte, 60)
	le.PutUint32(nw[4:], (minor&0xff)|(major<<8)|((minor&^0xff)<<12))
	if got := decodeDev(nw); got != unix.Mkdev(major, minor) {
		t.Errorf("new encoding: %d:%d", unix.Major(got), unix.Minor(got))
	}
}

func TestExtendedTimes(t *testing.T) {
	sb := &superblock{blockSize: 4096, inodeSize: 256}
	b := rawInode(0o100644, 0, 0, 0)
	le := binary.LittleEndian
	le.PutUint32(b[16:], 0xFFFFFFFF)              // mtime: -1 as a signed 32-bit value
	le.PutUint32(b[136:], 1|uint32(999999999)<<2) // epoch 1: +2^32 s, and nanoseconds
	before1970 := int32(-315619200)
	le.PutUint32(b[8:], uint32(before1970)) // atime 1960-01-01, no epoch bits
	le.PutUint32(b[144:], 1700000000)       // crtime
	le.PutUint32(b[148:], uint32(5)<<2)
	in, err := parseInode(sb, 12, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1<<32-1, 999999999).UTC(); !in.st.Mtime.Equal(want) {
		t.Errorf("mtime %v, want %v", in.st.Mtime, want)
	}
	if want := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC); !in.st.Atime.Equal(want) {
		t.Errorf("atime %v, want %v", in.st.Atime, want)
	}
	if want := time.Unix(1700000000, 5).UTC(); !in.st.Btime.Equal(want) {
		t.Errorf("btime %v, want %v", in.st.Btime, want)
	}
	// A 128-byte inode has no extra fields at all.
	in, err = parseInode(&superblock{blockSize: 4096, inodeSize: 128}, 12, b[:128])
	if err != nil || !in.st.Btime.IsZero() || in.st.Mtime.Unix() != -1 {
		t.Errorf("128-byte inode: btime %v mtime %v (%v)", in.st.Btime, in.st.Mtime, err)
	}
}
