package ext4

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// rawFS wraps bare bytes as a volume of 1 KiB blocks, for feeding one parser at a time.
func rawFS(disk []byte) *FS {
	sb := &superblock{blockSize: 1024, blocksCount: uint64(len(disk)/1024) + 1, inodeSize: 256, inodesCount: 1 << 20,
		inodesPerGroup: 8192, descSize: 32, addrPerBlock: 256, clusterSize: 1024, incompat: incompatFiletype}
	return &FS{r: bytes.NewReader(disk), size: int64(len(disk)), sb: sb, inodes: newLRU[*inode](64), dirs: newLRU[*dirIndex](1000),
		parents: newLRU[uint32](64)}
}

var (
	fixtureOnce sync.Once
	seedImages  [][]byte
)

// fixtureImages returns the committed images' bytes, decompressed once per test binary.
func fixtureImages(f *testing.F) [][]byte {
	fixtureOnce.Do(func() {
		for _, gz := range fixtures(f) {
			b, err := os.ReadFile(gunzipTemp(f, gz))
			if err != nil {
				f.Fatal(err)
			}
			seedImages = append(seedImages, b)
		}
	})
	if len(seedImages) == 0 {
		f.Fatal("no fixtures")
	}
	return seedImages
}

// corpusImages returns the go-ext4 images of the acceptance corpus (made by other tools than ours),
// or none when the corpus is absent.
func corpusImages(f *testing.F) [][]byte {
	dir := filepath.Join(filepath.Dir(testfix.RepoRoot(f)), "shared", "acceptance", "corpus", "go-ext4")
	var imgs [][]byte
	for _, name := range []string{"tiny.ext4", "hierarchy_32.ext4", "hierarchy_64.ext4"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			imgs = append(imgs, b)
		}
	}
	return imgs
}

func FuzzSuperblock(f *testing.F) {
	for _, img := range append(corpusImages(f), fixtureImages(f)...) {
		f.Add(img[superblockOffset : superblockOffset+superblockSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := parseSuperblock(b)
		if err != nil {
			return
		}
		if sb.blockSize < 1024 || sb.blockSize > 65536 || sb.blockSize&(sb.blockSize-1) != 0 || sb.descPerBlock == 0 {
			t.Fatalf("accepted block size %d, %d descriptors per block", sb.blockSize, sb.descPerBlock)
		}
		for nr := uint32(0); nr < 4; nr++ {
			_ = sb.descBlock(nr)
		}
	})
}

func FuzzGroupDescriptors(f *testing.F) {
	for _, img := range append(corpusImages(f), fixtureImages(f)...) {
		sb, err := parseSuperblock(img[superblockOffset:])
		if err != nil {
			f.Fatal(err)
		}
		at := sb.descBlock(0) * uint64(sb.blockSize)
		f.Add(img[superblockOffset:superblockOffset+superblockSize], img[at:at+uint64(sb.blockSize)])
	}
	f.Fuzz(func(t *testing.T, super, table []byte) {
		sb, err := parseSuperblock(super)
		if err != nil || sb.blockSize > 4096 {
			return
		}
		// A volume holding the superblock and this descriptor table as block 1 or 2.
		disk := make([]byte, 3*sb.blockSize+2048)
		copy(disk[superblockOffset:], super)
		copy(disk[sb.descBlock(0)*uint64(sb.blockSize):], table)
		v, err := OpenWith(bytes.NewReader(disk), int64(len(disk)), Options{})
		if err != nil {
			return
		}
		for g := range v.groups {
			_ = parseGroupDesc(table[:min(len(table), 64)], g%2 == 0)
		}
	})
}

func FuzzInode(f *testing.F) {
	for _, img := range fixtureImages(f)[:3] {
		v := rawFSFromImage(f, img)
		for ino := uint32(1); ino < 40; ino++ {
			g := v.groups[0]
			off := g.inodeTable*uint64(v.sb.blockSize) + uint64(ino-1)*uint64(v.sb.inodeSize)
			f.Add(img[off:off+uint64(v.sb.inodeSize)], v.sb.inodeSize == 256, v.sb.roCompat&roCompatHugeFile != 0)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, big, huge bool) {
		sb := &superblock{blockSize: 4096, inodeSize: 128}
		if big {
			sb.inodeSize = 256
		}
		if huge {
			sb.roCompat = roCompatHugeFile
		}
		if len(b) > int(sb.inodeSize) {
			b = b[:sb.inodeSize]
		}
		in, err := parseInode(sb, 12, b)
		if err != nil {
			return
		}
		if in.st.Size < 0 || in.st.AllocatedSize < 0 && !huge {
			t.Fatalf("negative sizes %+v", in.st)
		}
		v := rawFS(make([]byte, 64*1024))
		_, _ = v.xattrs(in)
		_, _ = v.linkTarget("x", in)
		if d, err := v.dataOf(in); err == nil {
			_, _ = d.ReadAt(make([]byte, 4096), 0)
		}
	})
}

func rawFSFromImage(f *testing.F, img []byte) *FS {
	v, err := OpenWith(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

func FuzzExtentTree(f *testing.F) {
	le := binary.LittleEndian
	root := make([]byte, 60)
	le.PutUint16(root[0:], extentMagic)
	le.PutUint16(root[2:], 1)
	le.PutUint16(root[4:], 4)
	le.PutUint16(root[6:], 1)
	le.PutUint32(root[12:], 0)
	le.PutUint32(root[16:], 2) // index → block 2
	node := make([]byte, 1024)
	le.PutUint16(node[0:], extentMagic)
	le.PutUint16(node[2:], 2)
	le.PutUint16(node[4:], 84)
	for i, e := range [][3]uint32{{0, 3, 5}, {10, 32768 + 2, 9}} {
		le.PutUint32(node[12+12*i:], e[0])
		le.PutUint16(node[16+12*i:], uint16(e[1]))
		le.PutUint32(node[20+12*i:], e[2])
	}
	f.Add(root, node)
	f.Fuzz(func(t *testing.T, root, node []byte) {
		disk := make([]byte, 16*1024)
		copy(disk[2048:], node)
		copy(disk[3072:], node) // a second copy, so a tree may point at either
		v := rawFS(disk)
		runs, err := v.extentRuns(root)
		if err != nil {
			return
		}
		var end uint64
		for _, r := range runs {
			if r.logical < end || r.length == 0 || r.physical+r.length > v.volumeBlocks() {
				t.Fatalf("bad runs %+v", runs)
			}
			end = r.logical + r.length
		}
		d := &data{f: v, size: int64(end) * 1024, runs: runs}
		_, _ = d.ReadAt(make([]byte, 5000), 0)
	})
}

func FuzzBlockMap(f *testing.F) {
	iblock := make([]byte, 60)
	binary.LittleEndian.PutUint32(iblock[0:], 3)
	binary.LittleEndian.PutUint32(iblock[48:], 4) // single indirect
	binary.LittleEndian.PutUint32(iblock[52:], 5) // double indirect
	f.Add(iblock, []byte{6, 0, 0, 0, 7, 0, 0, 0}, uint64(300))
	f.Fuzz(func(t *testing.T, iblock, ind []byte, limit uint64) {
		if len(iblock) < 60 {
			return
		}
		disk := make([]byte, 16*1024)
		for b := 4; b < 8; b++ {
			copy(disk[b*1024:], ind)
		}
		v := rawFS(disk)
		runs, err := v.blockMapRuns(iblock[:60], limit%(1<<40))
		if err != nil {
			return
		}
		for _, r := range runs {
			if r.physical+r.length > v.volumeBlocks() {
				t.Fatalf("run outside the volume %+v", r)
			}
		}
	})
}

func FuzzDirBlock(f *testing.F) {
	for _, img := range fixtureImages(f)[:2] {
		v := rawFSFromImage(f, img)
		root, err := v.inode(rootIno)
		if err != nil {
			f.Fatal(err)
		}
		d, err := v.dataOf(root)
		if err != nil {
			f.Fatal(err)
		}
		blk := make([]byte, v.sb.blockSize)
		if _, err := d.ReadAt(blk, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(blk, true, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, filetype, big bool) {
		bs := uint32(1024)
		if big {
			bs = 65536
		}
		var parent uint32
		ents := parseDirBlock(b, filetype, bs, 1<<20, nil, &parent, nil)
		for _, e := range ents {
			if e.ino == 0 || e.name == "" || e.name == "." || e.name == ".." || strings.ContainsAny(e.name, "/\x00") {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

func FuzzXattr(f *testing.F) {
	le := binary.LittleEndian
	body := make([]byte, 96)
	le.PutUint32(body, xattrMagic)
	body[4], body[5] = 5, 1 // "user.small"
	le.PutUint16(body[6:], 40)
	le.PutUint32(body[12:], 4)
	copy(body[20:], "small")
	copy(body[44:], "tiny")
	f.Add(body, false)
	f.Add(append(le.AppendUint32(nil, 1), 1, 0, 6, 0, 2, 0, 4, 0, 0xd2, 4, 0, 0, 0x20, 0, 0, 0), true)
	// The in-inode xattr areas that mke2fs and the kernel wrote into the fixtures.
	for _, img := range fixtureImages(f) {
		v := rawFSFromImage(f, img)
		for ino := uint32(1); ino <= min(v.sb.inodesCount, 64); ino++ {
			if in, err := v.inode(ino); err == nil && len(in.extra) >= 4 && le.Uint32(in.extra) == xattrMagic {
				f.Add(bytes.Clone(in.extra), false)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, acl bool) {
		if acl {
			if out, err := aclToXattr(b); err == nil && (len(out)-4)%8 != 0 {
				t.Fatalf("ACL of %d bytes", len(out))
			}
			return
		}
		v := rawFS(make([]byte, 8192))
		in := &inode{ino: 12, extra: b}
		_, _ = v.xattrs(in)
		if len(b) >= xattrBlockHeader {
			_, _ = parseXattrEntries(b, xattrBlockHeader, 0, nil)
		}
	})
}

// FuzzImage mutates a whole small volume and walks it: every entry is listed, stat'ed, read and has
// its xattrs and link target fetched. Nothing may panic or hang.
func FuzzImage(f *testing.F) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		f.Skip("mke2fs not installed")
	}
	for _, opts := range [][]string{{"-t", "ext4", "-O", "inline_data,^has_journal"}, {"-t", "ext2", "-b", "1024"}} {
		dir := f.TempDir()
		src := filepath.Join(dir, "src")
		for _, p := range []string{"d/e", "d/f"} {
			if err := os.MkdirAll(filepath.Join(src, p), 0o755); err != nil {
				f.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(src, "d", "small"), []byte("small file"), 0o644)
		os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("0123456789abcdef"), 400), 0o644)
		os.Symlink("d/small", filepath.Join(src, "link"))
		img := filepath.Join(dir, "img")
		if err := os.WriteFile(img, make([]byte, 64<<10), 0o644); err != nil {
			f.Fatal(err)
		}
		args := append(append([]string{"-q", "-F", "-N", "24", "-d", src}, opts...), img, "64k")
		if out, err := exec.Command("mke2fs", args...).CombinedOutput(); err != nil {
			f.Fatalf("mke2fs: %v: %s", err, out)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		done := make(chan bool, 1)
		go func() {
			defer func() { done <- true }()
			v, err := OpenWith(bytes.NewReader(img), int64(len(img)), Options{InodeCache: 16, DirCache: 64})
			if err != nil {
				return
			}
			exercise(v)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<16)
			t.Fatalf("walk of a %d-byte image still running after 20s:\n%s", len(img), buf[:runtime.Stack(buf, true)])
		}
	})
}

// exercise touches everything reachable in v and returns how many entries it saw and how many
// walk or read errors it met.
func exercise(v *FS) int {
	n, _ := exerciseErrs(v)
	return n
}

func exerciseErrs(v *FS) (n, errs int) {
	_ = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		n++
		if err != nil {
			errs++
			return nil
		}
		if n > 10000 {
			return nil
		}
		_, _ = d.Info()
		_, _ = v.Lstat(p)
		_, _ = v.Stat(p)
		_, _ = v.ReadLink(p)
		names, _ := v.ListXattr(p)
		for _, x := range names {
			_, _ = v.GetXattr(p, x)
		}
		if d.IsDir() {
			_, _ = treecmp.StreamNames(v, p, 64) // the streamed listing too
		}
		if d.Type().IsRegular() {
			fl, err := v.Open(p)
			if err == nil {
				_, err = io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
				fl.Close()
			}
			if err != nil {
				errs++
			}
		}
		return nil
	})
	return n, errs
}

// FuzzHtree feeds three directory blocks (root, then two more) to the hash-index lookup.
func FuzzHtree(f *testing.F) {
	for _, img := range fixtureImages(f) {
		v := rawFSFromImage(f, img)
		in, err := v.lookup("seed", "many", false)
		if err != nil || in.flags&flagIndex == 0 || v.sb.blockSize != 1024 {
			continue
		}
		d, err := v.dataOf(in)
		if err != nil {
			f.Fatal(err)
		}
		blk := make([]byte, 3*1024)
		if _, err := d.ReadAt(blk, 0); err != nil {
			f.Fatal(err)
		}
		f.Add(blk[:1024], blk[1024:2048], blk[2048:], "entry-7-ppppppp")
	}
	f.Fuzz(func(t *testing.T, root, b1, b2 []byte, name string) {
		disk := make([]byte, 8*1024)
		copy(disk[3*1024:4*1024], root)
		copy(disk[4*1024:5*1024], b1)
		copy(disk[5*1024:6*1024], b2)
		v := rawFS(disk)
		v.sb.compat |= compatDirIndex
		in := &inode{ino: 12, flags: flagIndex}
		in.st.Mode = 0o40755
		in.st.Size = 3 * 1024
		for i, b := range []uint32{3, 4, 5} {
			binary.LittleEndian.PutUint32(in.block[4*i:], b)
		}
		_, _, _ = v.htreeLookup(in, name)
		_, _ = v.parentOf(in)
	})
}
