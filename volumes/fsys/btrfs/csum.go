package btrfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var warnOnce sync.Once

// verifyCsum checks the checksum of a superblock or tree block: the first 32 bytes hold the checksum
// of everything after them.
func verifyCsum(typ uint16, b []byte) error {
	switch typ {
	case csumCRC32C:
		if got, want := binary.LittleEndian.Uint32(b), crc32.Checksum(b[32:], castagnoli); got != want {
			return fmt.Errorf("%w: crc32c %#08x, computed %#08x", ErrCorrupt, got, want)
		}
	case csumSHA256:
		if sum := sha256.Sum256(b[32:]); !bytes.Equal(sum[:], b[:32]) {
			return fmt.Errorf("%w: sha256 checksum mismatch", ErrCorrupt)
		}
	case csumXXHash, csumBlake2:
		warnOnce.Do(func() { slog.Warn("btrfs: metadata checksums not verified", "type", typ) })
	default:
		return fmt.Errorf("%w: checksum type %d", ErrUnsupported, typ)
	}
	return nil
}
