package makefs

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSquashfsCompressed: the data blocks go-diskfs writes raw are compressed (the image is far
// smaller than a compressible file), blocks zlib cannot shrink are stored raw with the uncompressed
// bit, and unsquashfs, the kernel and our reader read every file back.
func TestSquashfsCompressed(t *testing.T) {
	need(t, "unsquashfs", "mount")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	rnd := rand.New(rand.NewPCG(3, 4))
	noise := make([]byte, 2*128<<10+100) // two full blocks and a tail in a fragment
	for i := range noise {
		noise[i] = byte(rnd.Uint32())
	}
	text := bytes.Repeat([]byte("squashfs data blocks compressed over all cores\n"), 8*128<<10/47)
	files := map[string][]byte{"text": text, "noise": noise, "d/small": text[:500], "d/empty": nil, "d/tail": text[:128<<10+7]}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	if _, err := Make(src, raw, Options{FS: "squashfs", Type: "raw", Partition: "none"}); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	used := int64(le.Uint64(img[40:]))
	if limit := int64(len(noise) + len(text)/10 + 64<<10); used > limit {
		t.Errorf("the squashfs uses %d bytes, more than %d: the text is not compressed", used, limit)
	}
	if flags := le.Uint16(img[24:]); flags&(0x0002|0x0008) != 0 {
		t.Errorf("superblock flags %#x still say the data or fragments are uncompressed", flags)
	}
	// The inode table is stored uncompressed (sqRewrite): walk it for the file inodes' block sizes.
	var inodes []byte
	for p := int64(le.Uint64(img[64:])); p < int64(le.Uint64(img[72:])); {
		h := le.Uint16(img[p:])
		if h&0x8000 == 0 {
			t.Fatalf("inode table block at %d is compressed", p)
		}
		inodes = append(inodes, img[p+2:p+2+int64(h&0x7fff)]...)
		p += 2 + int64(h&0x7fff)
	}
	blockSize := int(le.Uint32(img[12:]))
	sizes := map[int][]uint32{} // by file size
	for pos, n := 0, le.Uint32(img[4:]); n > 0; n-- {
		in := append(inodes[pos:len(inodes):len(inodes)], make([]byte, 64)...)
		size, _, err := sqInodeSize(in, blockSize)
		if err != nil {
			t.Fatal(err)
		}
		if le.Uint16(in) == 2 {
			var s []uint32
			for i := 32; i < size; i += 4 {
				s = append(s, le.Uint32(in[i:]))
			}
			sizes[int(le.Uint32(in[28:]))] = s
		}
		pos += size
	}
	if s := sizes[len(noise)]; len(s) != 2 || s[0] != sqRaw|uint32(blockSize) || s[1] != sqRaw|uint32(blockSize) {
		t.Errorf("random file's block sizes %#x, want two raw blocks of %d", s, blockSize)
	}
	if s := sizes[len(text)]; len(s) != len(text)/blockSize {
		t.Errorf("text's block sizes %#x, want %d blocks", s, len(text)/blockSize)
	} else {
		for _, b := range s {
			if b&sqRaw != 0 || int(b) > blockSize/10 {
				t.Errorf("text's block sizes %#x: not all compressed", s)
				break
			}
		}
	}
	// Independent readers.
	x := filepath.Join(dir, "x")
	run(t, "unsquashfs", "-d", x, raw)
	w := want{modes: true, res: time.Second}
	compare(t, "unsquashfs", src, hostTree(x), w, nil)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", raw, mnt).CombinedOutput(); err != nil {
		t.Skipf("no loop mount here: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	compare(t, "kernel", src, hostTree(mnt), w, nil)
	compare(t, "vmdkmount", src, ourTree(t, raw), w, nil)
}
