package btrfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/crypto/blake2b"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the checksum of b as Btrfs stores it: crc32c and xxhash64 little-endian, sha256 and
// blake2b-256 as digests.
func checksum(typ uint16, b []byte) ([]byte, error) {
	switch typ {
	case csumCRC32C:
		return binary.LittleEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli)), nil
	case csumXXHash:
		return binary.LittleEndian.AppendUint64(nil, xxhash.Sum64(b)), nil
	case csumSHA256:
		s := sha256.Sum256(b)
		return s[:], nil
	case csumBlake2:
		s := blake2b.Sum256(b)
		return s[:], nil
	}
	return nil, fmt.Errorf("%w: checksum type %d", ErrUnsupported, typ)
}

// verifyCsum checks the checksum of a superblock or tree block: the first 32 bytes hold the checksum
// of everything after them.
func verifyCsum(typ uint16, b []byte) error {
	want, err := checksum(typ, b[32:])
	if err != nil {
		return err
	}
	if got := b[:len(want)]; !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s checksum %x, computed %x", ErrCorrupt, csumNames[typ], got, want)
	}
	return nil
}

var csumNames = map[uint16]string{csumCRC32C: "crc32c", csumXXHash: "xxhash64", csumSHA256: "sha256", csumBlake2: "blake2b"}
