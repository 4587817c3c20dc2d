package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// fixtureBytes returns a committed image's bytes.
func fixtureBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(gunzipTemp(t, filepath.Join(testfix.RepoRoot(t), "testdata", "ext4", name+".img.gz")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(t *testing.T, b []byte) *FS {
	t.Helper()
	v, err := OpenWith(bytes.NewReader(b), int64(len(b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// walkWithin runs exercise in the background and fails if it does not finish promptly.
func walkWithin(t *testing.T, v *FS) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- exercise(v) }()
	select {
	case n := <-done:
		return n
	case <-time.After(30 * time.Second):
		t.Fatal("walk did not finish: a loop in the on-disk structures was not caught")
		return 0
	}
}

// inodeOffset is where inode ino's record starts in the image.
func inodeOffset(v *FS, ino uint32) int64 {
	g := (ino - 1) / v.sb.inodesPerGroup
	return int64(v.groups[g].inodeTable)*int64(v.sb.blockSize) + int64((ino-1)%v.sb.inodesPerGroup)*int64(v.sb.inodeSize)
}

func TestDirectoryLoopDoesNotHang(t *testing.T) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs not installed")
	}
	img := gunzipTemp(t, filepath.Join(testfix.RepoRoot(t), "testdata", "ext4", "ext4-4k.img.gz"))
	// Hard links to directories: one back to an ancestor, one to the root.
	for _, cmd := range []string{"link dir dir/sub/deeper/back", "link / dir/sub/root"} {
		if out, err := exec.Command("debugfs", "-w", "-R", cmd, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v: %s", cmd, err, out)
		}
	}
	v := openImage(t, img)
	if n := walkWithin(t, v); n < 400 {
		t.Errorf("walk saw only %d entries", n)
	}
	for _, p := range []string{"dir/sub/deeper/back", "dir/sub/root", "dir/sub/deeper/back/small.txt"} {
		if _, err := v.Lstat(p); !errors.Is(err, errDirLoop) {
			t.Errorf("Lstat(%s) = %v, want a directory-loop error", p, err)
		}
	}
	if _, err := v.Lstat("dir/sub/random.bin"); err != nil {
		t.Errorf("entry beside the loop: %v", err)
	}
}

func TestExtentTreeLoopIsAnError(t *testing.T) {
	b := fixtureBytes(t, "ext4-4k")
	v := openBytes(t, b)
	in := in0(t, v, "sparse_many")
	h, err := parseExtentHeader(in.block[:])
	if err != nil || h.depth != 1 {
		t.Fatalf("sparse_many should have an extent index: %+v %v", h, err)
	}
	le := binary.LittleEndian
	child := uint64(le.Uint32(in.block[16:]))
	at := child * uint64(v.sb.blockSize)
	// The leaf becomes an index that points at itself.
	le.PutUint16(b[at+6:], 1)
	le.PutUint32(b[at+12:], 0)
	le.PutUint32(b[at+16:], uint32(child))
	le.PutUint16(b[at+20:], 0)
	v = openBytes(t, b)
	if _, err := v.Open("sparse_many"); !errors.Is(err, errCorrupt) {
		t.Errorf("Open of a self-referencing extent tree: %v", err)
	}
	// Overlapping leaf extents are refused too.
	le.PutUint16(b[at+6:], 0)
	le.PutUint32(b[at+12:], 5)
	le.PutUint16(b[at+16:], 1)
	le.PutUint32(b[at+24:], 4) // second extent starts before the first ends
	v = openBytes(t, b)
	if _, err := v.Open("sparse_many"); !errors.Is(err, errCorrupt) {
		t.Errorf("Open of overlapping extents: %v", err)
	}
	if n := walkWithin(t, v); n < 400 {
		t.Errorf("walk saw only %d entries", n)
	}
}

func TestCorruptInodeOnlyFailsThatEntry(t *testing.T) {
	b := fixtureBytes(t, "ext4-4k")
	v := openBytes(t, b)
	bad := in0(t, v, "empty").ino
	binary.LittleEndian.PutUint16(b[inodeOffset(v, bad)+128:], 0x3fd) // i_extra_isize past the record
	link := in0(t, v, "very_slow_link").ino
	binary.LittleEndian.PutUint32(b[inodeOffset(v, link)+4:], 1<<20) // symlink longer than a block
	v = openBytes(t, b)
	if _, err := v.Lstat("empty"); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Lstat of the corrupt inode: %v", err)
	}
	if _, err := v.ReadLink("very_slow_link"); !errors.Is(err, errCorrupt) {
		t.Errorf("ReadLink of an oversized symlink: %v", err)
	}
	ents, err := v.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ents {
		if e.Name() == "empty" {
			found = true
			if _, err := e.Info(); err == nil {
				t.Error("Info of the corrupt entry succeeded")
			}
		}
	}
	if !found {
		t.Error("the corrupt entry vanished from its directory")
	}
	if got, err := fs.ReadFile(v, "dir/small.txt"); err != nil || string(got) != "hello, ext\n" {
		t.Errorf("neighbour file: %q, %v", got, err)
	}
}

func TestCorruptDirectoryBlock(t *testing.T) {
	b := fixtureBytes(t, "ext4-4k")
	v := openBytes(t, b)
	d, err := v.dataOf(in0(t, v, "dir/sub"))
	if err != nil {
		t.Fatal(err)
	}
	at := d.runs[0].physical * uint64(v.sb.blockSize)
	binary.LittleEndian.PutUint16(b[at+4:], 6) // rec_len below the header size
	v = openBytes(t, b)
	// As the kernel's readdir: the rest of the damaged block is skipped, the directory still lists.
	if ents, err := v.ReadDir("dir/sub"); err != nil || len(ents) != 0 {
		t.Errorf("ReadDir of a directory whose only block is corrupt: %d entries, %v", len(ents), err)
	}
	if _, err := v.Lstat("dir/sub/random.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lookup of an entry in the skipped part of the block: %v", err)
	}
	if _, err := v.ReadDir("dir"); err != nil {
		t.Errorf("parent directory: %v", err)
	}
}

func TestTruncatedImage(t *testing.T) {
	b := fixtureBytes(t, "ext4-4k")
	for _, n := range []int{len(b) / 2, 300 * 1024, 64 * 1024} {
		v, err := OpenWith(bytes.NewReader(b[:n]), int64(n), Options{})
		if err != nil {
			continue // refusing to open is fine
		}
		walkWithin(t, v)
		if _, errs := exerciseErrs(v); errs == 0 {
			t.Errorf("%d-byte image of %d read without a single error", n, len(b))
		}
	}
	for _, n := range []int{0, 1500, 2047} {
		if _, err := OpenWith(bytes.NewReader(b[:n]), int64(n), Options{}); err == nil {
			t.Errorf("%d-byte image opened", n)
		}
	}
}

func TestHostileSuperblocks(t *testing.T) {
	b := fixtureBytes(t, "ext4-4k")
	le := binary.LittleEndian
	cases := map[string]func(sb []byte){
		"magic":         func(sb []byte) { le.PutUint16(sb[56:], 0x1234) },
		"block size":    func(sb []byte) { le.PutUint32(sb[24:], 9) },
		"group count":   func(sb []byte) { le.PutUint32(sb[32:], 1); le.PutUint32(sb[4:], 0xffffffff) },
		"inode size":    func(sb []byte) { le.PutUint16(sb[88:], 100) },
		"compression":   func(sb []byte) { le.PutUint32(sb[96:], le.Uint32(sb[96:])|incompatCompression) },
		"desc size":     func(sb []byte) { le.PutUint16(sb[254:], 48) },
		"inodes/group":  func(sb []byte) { le.PutUint32(sb[40:], 0) },
		"journal dev":   func(sb []byte) { le.PutUint32(sb[96:], le.Uint32(sb[96:])|incompatJournalDev) },
		"no data block": func(sb []byte) { le.PutUint32(sb[4:], 0); le.PutUint32(sb[336:], 0) },
	}
	for name, mutate := range cases {
		c := append([]byte(nil), b...)
		mutate(c[superblockOffset:])
		if _, err := OpenWith(bytes.NewReader(c), int64(len(c)), Options{}); err == nil {
			t.Errorf("%s: hostile superblock accepted", name)
		}
	}
}

// io.ReaderAt semantics at the end and beyond, and reads that span holes and data.
func TestReadAtEdges(t *testing.T) {
	v := openBytes(t, fixtureBytes(t, "ext4-4k"))
	fl, err := v.Open("trailing_hole")
	if err != nil {
		t.Fatal(err)
	}
	f := fl.(io.ReaderAt)
	size := int64(5*4096 + 17)
	buf := make([]byte, 100)
	if n, err := f.ReadAt(buf, size-10); n != 10 || err != io.EOF || !bytes.Equal(buf[:10], make([]byte, 10)) {
		t.Errorf("read over the end: %d, %v", n, err)
	}
	if n, err := f.ReadAt(buf[:4], 0); n != 4 || err != nil || string(buf[:4]) != "head" {
		t.Errorf("read at 0: %q, %v", buf[:4], err)
	}
	if _, err := f.ReadAt(buf, -1); err == nil {
		t.Error("negative offset accepted")
	}
}

// Encrypted entries fail on their own; the rest of the volume reads.
func TestEncryptedEntriesRefused(t *testing.T) {
	b := fixtureBytes(t, "ext4-1k-32bit") // no metadata_csum: the flag edit needs no checksum update
	v := openBytes(t, b)
	le := binary.LittleEndian
	for _, p := range []string{"dir/sub", "empty", "slow_link"} {
		at := inodeOffset(v, in0(t, v, p).ino) + 32
		le.PutUint32(b[at:], le.Uint32(b[at:])|flagEncrypt)
	}
	v = openBytes(t, b)
	if _, err := v.ReadDir("dir/sub"); !errors.Is(err, errEncrypted) {
		t.Errorf("ReadDir of an encrypted directory: %v", err)
	}
	if _, err := v.Open("empty"); !errors.Is(err, errEncrypted) {
		t.Errorf("Open of an encrypted file: %v", err)
	}
	if _, err := v.ReadLink("slow_link"); !errors.Is(err, errEncrypted) {
		t.Errorf("ReadLink of an encrypted link: %v", err)
	}
	if got, err := fs.ReadFile(v, "dir/small.txt"); err != nil || string(got) != "hello, ext\n" {
		t.Errorf("plain file beside them: %q, %v", got, err)
	}
}
