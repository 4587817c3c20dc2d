package regf

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// builder lays out a hive by hand from the format's facts: a base block, then one hive bin holding the
// cells added, then a free cell up to the bin's end. Tests use it for the minimal hive hivex starts
// from and for the structures hivex never writes (li and ri lists, big data) or hostile ones.
type builder struct {
	minor uint32
	cells []byte // the hive bin's content after its 32-byte header
}

func newBuilder() *builder { return &builder{minor: 5} }

// add appends a used cell with data and returns its hive offset.
func (b *builder) add(data []byte) uint32 {
	off := uint32(hbinHeader + len(b.cells))
	size := (4 + len(data) + 7) &^ 7
	c := make([]byte, size)
	binary.LittleEndian.PutUint32(c, uint32(-int32(size)))
	copy(c[4:], data)
	b.cells = append(b.cells, c...)
	return off
}

// set overwrites bytes of an added cell's data (to patch offsets known only later).
func (b *builder) set(cell uint32, at int, v uint32) {
	binary.LittleEndian.PutUint32(b.cells[int(cell)-hbinHeader+4+at:], v)
}

// nk returns the data of a key cell named name (Latin-1) with no subkeys or values.
func nk(name string, flags uint16, parent, sk uint32) []byte {
	c := make([]byte, 0x4C+len(name))
	copy(c, "nk")
	binary.LittleEndian.PutUint16(c[2:], flags|nkCompName)
	binary.LittleEndian.PutUint64(c[4:], 133000000000000000)
	binary.LittleEndian.PutUint32(c[0x10:], parent)
	for _, at := range []int{0x1C, 0x20, 0x28, 0x30} {
		binary.LittleEndian.PutUint32(c[at:], 0xFFFFFFFF)
	}
	binary.LittleEndian.PutUint32(c[0x2C:], sk)
	binary.LittleEndian.PutUint16(c[0x48:], uint16(len(name)))
	copy(c[0x4C:], name)
	return c
}

// skCell is a security cell linked to itself with a minimal self-relative descriptor.
func skCell(self uint32) []byte {
	desc := []byte{1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	c := make([]byte, 0x14+len(desc))
	copy(c, "sk")
	binary.LittleEndian.PutUint32(c[4:], self)
	binary.LittleEndian.PutUint32(c[8:], self)
	binary.LittleEndian.PutUint32(c[0x0C:], 1)
	binary.LittleEndian.PutUint32(c[0x10:], uint32(len(desc)))
	copy(c[0x14:], desc)
	return c
}

// bytes finishes the hive: the bin is padded to whole pages with a free cell, and the base block,
// which names root as the root key, gets its checksum.
func (b *builder) bytes(root uint32) []byte {
	binSize := (hbinHeader + len(b.cells) + 8 + pageSize - 1) &^ (pageSize - 1)
	bin := make([]byte, binSize)
	copy(bin, "hbin")
	binary.LittleEndian.PutUint32(bin[8:], uint32(binSize))
	copy(bin[hbinHeader:], b.cells)
	free := bin[hbinHeader+len(b.cells):]
	binary.LittleEndian.PutUint32(free, uint32(len(free)))
	base := make([]byte, baseBlockSize)
	copy(base, "regf")
	binary.LittleEndian.PutUint32(base[4:], 1)
	binary.LittleEndian.PutUint32(base[8:], 1)
	binary.LittleEndian.PutUint32(base[0x14:], 1)
	binary.LittleEndian.PutUint32(base[0x18:], b.minor)
	binary.LittleEndian.PutUint32(base[0x20:], 1)
	binary.LittleEndian.PutUint32(base[0x24:], root)
	binary.LittleEndian.PutUint32(base[0x28:], uint32(binSize))
	binary.LittleEndian.PutUint32(base[0x2C:], 1)
	fixChecksum(base)
	return append(base, bin...)
}

func fixChecksum(base []byte) {
	var sum uint32
	for i := 0; i < 0x1FC; i += 4 {
		sum ^= binary.LittleEndian.Uint32(base[i:])
	}
	binary.LittleEndian.PutUint32(base[0x1FC:], sum)
}

// minimalHive is an empty hive: a root key named name and its security cell.
func minimalHive(name string) []byte {
	b := newBuilder()
	root := b.add(nk(name, nkRoot|0x08, 0, 0))
	sk := b.add(skCell(0))
	b.set(sk, 4, sk)
	b.set(sk, 8, sk)
	b.set(root, 0x2C, sk)
	return b.bytes(root)
}

// hivexsh runs a hivexsh script on the hive at path (with -w when it writes) and returns its output.
func hivexsh(t testing.TB, path, script string, write bool) string {
	t.Helper()
	sf := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(sf, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", sf, path}
	if write {
		args = append([]string{"-w"}, args...)
	}
	out, err := exec.Command("hivexsh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("hivexsh: %v\n%s", err, out)
	}
	return string(out)
}

// needHivex skips when the hivex tools are missing (Debian libhivex-bin).
func needHivex(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"hivexsh", "hivexml"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian libhivex-bin)", tool)
		}
	}
}

// writeHive writes b to a new file in a test folder.
func writeHive(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hive")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
