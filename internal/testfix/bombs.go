package testfix

// The memory bombs of issue "Untrusted images", built once here for the readers' hostile suites and
// the mount tests alike. Nothing here imports the readers, so their own tests can use it.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// SparseGrainDirFile writes a hosted sparse extent whose header asks for a grain directory of
// gdEntries entries (all empty) and which is just large enough to hold it: a host sparse file of a few
// KiB on disk that costs 4*gdEntries bytes to load.
func SparseGrainDirFile(tb testing.TB, path string, gdEntries uint64) {
	tb.Helper()
	const grain, gtes, sector = 8, 512, 512
	le := binary.LittleEndian
	h := make([]byte, sector)
	le.PutUint32(h[0:], 0x564d444b) // "KDMV"
	le.PutUint32(h[4:], 1)
	le.PutUint64(h[12:], gdEntries*gtes*grain) // capacity
	le.PutUint64(h[20:], grain)
	le.PutUint32(h[44:], gtes)
	le.PutUint64(h[56:], 1) // grain directory at sector 1
	le.PutUint64(h[64:], 1)
	if err := os.WriteFile(path, h, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(path, sector+int64(gdEntries)*4); err != nil {
		tb.Fatal(err)
	}
}

// ManyLinesDescriptor is the text of a descriptor with the given extent lines.
func ManyLinesDescriptor(createType string, lines []string) string {
	return "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"" + createType + "\"\n" +
		strings.Join(lines, "\n") + "\n"
}

// RepeatedBlockDirEntries is how many files the directory d of RepeatedBlockDirImage holds
// (file-00…file-49); the image's root also holds GoodFile.
const RepeatedBlockDirEntries = 50

// GoodFile and GoodText are a file beside the bomb in the images made here, and its contents: what
// must still read after the bomb went off.
const (
	GoodFile = "good.txt"
	GoodText = "this file still reads\n"
)

// RepeatedBlockDirImage builds a 4 GiB-class sparse ext3-layout image (block maps) whose directory d's
// single-indirect block points 1,024 times at d's one data block, and whose double-indirect block
// points 1,024 times at that indirect block: a directory of a million blocks that are all one.
//
// With distinct, the double-indirect block points at 1,024 distinct indirect blocks instead, each
// pointing 1,024 times at the data block: no indirect block repeats, the data block does.
func RepeatedBlockDirImage(tb testing.TB, distinct bool) string {
	tb.Helper()
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skip(tool + " not installed")
		}
	}
	tmp := tb.TempDir()
	src := filepath.Join(tmp, "src", "d")
	os.MkdirAll(src, 0o755)
	for i := range RepeatedBlockDirEntries {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("file-%02d", i)), nil, 0o644)
	}
	os.WriteFile(filepath.Join(tmp, "src", GoodFile), []byte(GoodText), 0o644)
	img := filepath.Join(tmp, "img")
	const blockSize, volume = 4096, 4200 << 20
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", strconv.Itoa(blockSize), "-N", "256",
		"-O", "^extent,^64bit,^flex_bg,^has_journal,^dir_index,^metadata_csum,^resize_inode", "-E", "lazy_itable_init=1",
		"-d", filepath.Join(tmp, "src"), img, strconv.Itoa(volume>>20)+"M").CombinedOutput(); err != nil {
		tb.Fatalf("mke2fs: %v: %s", err, out)
	}
	out, err := exec.Command("debugfs", "-R", "bmap d 0", img).Output()
	if err != nil {
		tb.Fatalf("debugfs bmap d 0: %v", err)
	}
	data64, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
	if err != nil || data64 == 0 {
		tb.Fatalf("debugfs bmap d 0: %q %v", out, err)
	}
	data := uint32(data64)
	blocks := uint32(volume / blockSize)
	ind, dind := blocks-2, blocks-3
	h, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	fill := func(at uint32, ptr func(i int) uint32) {
		blk := make([]byte, blockSize)
		for i := range blockSize / 4 {
			binary.LittleEndian.PutUint32(blk[4*i:], ptr(i))
		}
		if _, err := h.WriteAt(blk, int64(at)*blockSize); err != nil {
			tb.Fatal(err)
		}
	}
	fill(ind, func(int) uint32 { return data })
	fill(dind, func(int) uint32 { return ind })
	if distinct {
		// Indirect blocks at the end of the volume, below dind.
		fill(dind, func(i int) uint32 { return dind - 1 - uint32(i) })
		for i := range blockSize / 4 {
			fill(dind-1-uint32(i), func(int) uint32 { return data })
		}
	}
	h.Close()
	size := uint64(1<<32 - blockSize)
	for _, cmd := range []string{fmt.Sprintf("sif d block[IND] %d", ind), fmt.Sprintf("sif d block[DIND] %d", dind), fmt.Sprintf("sif d size %d", size)} {
		if out, err := exec.Command("debugfs", "-w", "-R", cmd, img).CombinedOutput(); err != nil {
			tb.Fatalf("debugfs %s: %v: %s", cmd, err, out)
		}
	}
	return img
}

// XzDictionaryBomb is an xz stream of two LZMA2 blocks of 6 bytes each ("hello!"), without check,
// index or footer: the first block's header asks for a 256 KiB dictionary, the second's for 4 GiB, which
// a decoder that checks only the first header allocates.
func XzDictionaryBomb() []byte {
	const lzma2 = 0x21
	stream := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0, 0xff, 0x12, 0xd9, 0x41} // no check
	for _, prop := range []byte{12, 40} {
		block := []byte{2, 0x00, lzma2, 1, prop, 0, 0, 0, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(block[8:], crc32.ChecksumIEEE(block[:8]))
		stream = append(append(stream, block...), 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', '!', 0x00, 0, 0)
	}
	return stream
}

// SquashfsBombFile is the file of SquashfsXzBombImage whose one data block is XzDictionaryBomb.
const SquashfsBombFile = "bomb"

// SquashfsXzBombImage makes an xz squashfs image (mksquashfs) holding SquashfsBombFile, one 128 KiB
// block of text, and GoodFile, then overwrites the bomb's data block with XzDictionaryBomb and zeros.
// Reading the bomb must fail as damage (the block decodes to 12 bytes, not 128 KiB); GoodFile reads.
func SquashfsXzBombImage(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		tb.Skip("mksquashfs not installed")
	}
	tmp := tb.TempDir()
	src := filepath.Join(tmp, "src")
	os.Mkdir(src, 0o755)
	var text bytes.Buffer
	for i := 0; text.Len() < 128<<10; i++ {
		fmt.Fprintf(&text, "line %d of the file whose block is replaced\n", i)
	}
	os.WriteFile(filepath.Join(src, SquashfsBombFile), text.Bytes()[:128<<10], 0o644)
	os.WriteFile(filepath.Join(src, GoodFile), []byte(GoodText), 0o644)
	img := filepath.Join(tmp, "bomb.sqfs")
	if out, err := exec.Command("mksquashfs", src, img, "-comp", "xz", "-b", "131072", "-noappend", "-no-xattrs",
		"-no-progress", "-quiet").CombinedOutput(); err != nil {
		tb.Fatalf("mksquashfs: %v: %s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		tb.Fatal(err)
	}
	// mksquashfs writes the files' data blocks first, right after the 96-byte superblock (there are no
	// compressor options with the defaults), in name order: the bomb's block comes before good.txt's
	// fragment. Its end is the first valid xz stream footer.
	const start = 96
	if !bytes.HasPrefix(b[start:], []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		tb.Fatalf("no xz stream after the superblock of %s", img)
	}
	end := xzStreamEnd(b, start)
	if end < 0 {
		tb.Fatalf("no xz stream footer after the superblock of %s", img)
	}
	bomb := XzDictionaryBomb()
	if len(bomb) > end-start {
		tb.Fatalf("the bomb (%d bytes) is longer than the block it replaces (%d)", len(bomb), end-start)
	}
	clear(b[start+copy(b[start:], bomb) : end])
	if err := os.WriteFile(img, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return img
}

// xzStreamEnd returns the end of the xz stream starting at start: the first 12-byte footer (its CRC32
// right, its flags the header's, its magic "YZ") on a 4-byte boundary, or -1.
func xzStreamEnd(b []byte, start int) int {
	flags := b[start+6 : start+8]
	for p := start + 12; p+12 <= len(b); p += 4 {
		f := b[p : p+12]
		if f[10] == 'Y' && f[11] == 'Z' && bytes.Equal(f[8:10], flags) &&
			binary.LittleEndian.Uint32(f) == crc32.ChecksumIEEE(f[4:10]) {
			return p + 12
		}
	}
	return -1
}
