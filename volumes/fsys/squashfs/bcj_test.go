package squashfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestXzBranchFilters builds xz images with mksquashfs -Xbcj for each branch converter we decode,
// from contents that make the filter pay off (x86: this test binary's machine code; the others:
// call instructions that all reach one target, which the filter turns into identical words), checks
// that blocks really carry the filter, and compares the tree with the kernel mount.
func TestXzBranchFilters(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs not installed")
	}
	const blockSize = 128 << 10
	for _, tc := range []struct {
		name string
		id   byte
		make func() []byte
	}{
		{"x86", xzFilterX86, func() []byte { return testfix.ExecutablePrefix(t, 1<<20) }},
		{"arm", xzFilterARM, func() []byte {
			return calls(blockSize, 4, func(p uint32) []byte {
				return binary.LittleEndian.AppendUint32(nil, 0xeb000000|((callTarget-(p+8))>>2)&0xffffff)
			})
		}},
		{"armthumb", xzFilterARMThumb, func() []byte {
			return calls(blockSize, 4, func(p uint32) []byte {
				rel := (callTarget - (p + 4)) >> 1
				return []byte{byte(rel >> 11), 0xf0 | byte(rel>>19)&7, byte(rel), 0xf8 | byte(rel>>8)&7}
			})
		}},
		{"powerpc", xzFilterPowerPC, func() []byte {
			return calls(blockSize, 4, func(p uint32) []byte {
				return binary.BigEndian.AppendUint32(nil, 0x48000000|(callTarget-p)&0x03fffffc|1)
			})
		}},
		{"sparc", xzFilterSPARC, func() []byte {
			return calls(blockSize, 4, func(p uint32) []byte {
				return binary.BigEndian.AppendUint32(nil, 0x40000000|((callTarget-p)>>2)&0x3fffffff)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "program"), tc.make(), 0o644); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(tmp, "bcj.sqfs")
			if b, err := exec.Command("mksquashfs", src, img, "-comp", "xz", "-Xbcj", tc.name, "-no-fragments",
				"-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
				t.Fatalf("mksquashfs: %v: %s", err, b)
			}
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if n := filteredBlocks(data, tc.id); n == 0 {
				t.Fatalf("mksquashfs wrote no block with filter %#x; the test proves nothing", tc.id)
			}
			ours, err := Open(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			mnt := mountImage(t, data)
			for _, d := range treecmp.Compare(ours, mnt, treecmp.Options{CompareIno: true,
				Ignore: treecmp.Atime | treecmp.Ctime | treecmp.Btime}) {
				t.Error(d)
			}
		})
	}
}

// callTarget is the absolute address every generated call instruction reaches.
const callTarget = 0x00800000

// calls fills two blocks with call instructions of width w built by insn from their offset inside
// their block (each xz block restarts its position count at zero).
func calls(blockSize, w int, insn func(pos uint32) []byte) []byte {
	var out []byte
	for len(out) < 2*blockSize {
		out = append(out, insn(uint32(len(out)%blockSize))...)
	}
	return out
}

// filteredBlocks counts the xz streams in an image whose block applies filter id before LZMA2.
func filteredBlocks(data []byte, id byte) int {
	magic := []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	n := 0
	for off := 0; ; {
		i := bytes.Index(data[off:], magic)
		if i < 0 || off+i+15 > len(data) {
			return n
		}
		s := data[off+i:]
		if s[12] != 0 && s[13]&3 != 0 {
			pos := 14
			for _, bit := range []byte{0x40, 0x80} { // optional compressed and uncompressed sizes
				if s[13]&bit != 0 {
					_, k := binary.Uvarint(s[pos:])
					pos += max(k, 1)
				}
			}
			if pos < len(s) && s[pos] == id {
				n++
			}
		}
		off += i + 1
	}
}
