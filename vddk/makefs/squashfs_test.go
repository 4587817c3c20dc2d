package makefs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zlib"
	"golang.org/x/sys/unix"
)

// sqImage is a squashfs image as the tests inspect it: the superblock fields they need and the
// inode table, decompressed.
type sqImage struct {
	img       []byte
	blockSize int
	inodes    []byte
	count     int
	metaRaw   int // metadata blocks of the inode table stored uncompressed
}

func readSquashfs(t *testing.T, p string) *sqImage {
	t.Helper()
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(img) != 0x73717368 {
		t.Fatalf("%s: no squashfs superblock", p)
	}
	im := &sqImage{img: img, blockSize: int(le.Uint32(img[12:])), count: int(le.Uint32(img[4:]))}
	for p, end := int64(le.Uint64(img[64:])), int64(le.Uint64(img[72:])); p < end; {
		h := le.Uint16(img[p:])
		raw := img[p+2 : p+2+int64(h&0x7fff)]
		if h&0x8000 != 0 {
			im.metaRaw++
		} else {
			zr, err := zlib.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("inode table block at %d: %v", p, err)
			}
			if raw, err = io.ReadAll(zr); err != nil {
				t.Fatalf("inode table block at %d: %v", p, err)
			}
		}
		im.inodes = append(im.inodes, raw...)
		p += 2 + int64(h&0x7fff)
	}
	return im
}

// each calls fn with every inode's type and bytes.
func (im *sqImage) each(t *testing.T, fn func(typ uint16, in []byte)) {
	le := binary.LittleEndian
	blocks := func(size int64, frag uint32) int {
		n := size / int64(im.blockSize)
		if frag == sqNone && size%int64(im.blockSize) != 0 {
			n++
		}
		return int(n)
	}
	for pos, n := 0, 0; n < im.count; n++ {
		in := im.inodes[pos:]
		var size int
		switch typ := le.Uint16(in); typ {
		case sqDir:
			size = 32
		case sqLDir:
			size = 40
			for range le.Uint16(in[32:]) {
				size += 12 + int(le.Uint32(in[size+8:])) + 1
			}
		case sqFile:
			size = 32 + 4*blocks(int64(le.Uint32(in[28:])), le.Uint32(in[20:]))
		case sqLFile:
			size = 56 + 4*blocks(int64(le.Uint64(in[24:])), le.Uint32(in[44:]))
		case sqLink:
			size = 24 + int(le.Uint32(in[20:]))
		case sqBlockDev, sqCharDev:
			size = 24
		case sqFIFO, sqSocket:
			size = 20
		default:
			t.Fatalf("inode %d: type %d", n, typ)
		}
		fn(le.Uint16(in), in[:size])
		pos += size
	}
}

// TestSquashfsCompressed: data blocks and metadata are compressed (the image is far smaller than a
// compressible file), blocks zlib cannot shrink are stored raw with the uncompressed bit, and
// unsquashfs, the kernel and our reader read every file back.
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
	for i := range 800 { // enough inodes for several metadata blocks
		files[fmt.Sprintf("d/f%03d", i)] = []byte(fmt.Sprint(i))
	}
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
	im := readSquashfs(t, raw)
	le := binary.LittleEndian
	used := int64(le.Uint64(im.img[40:]))
	if limit := int64(len(noise) + len(text)/10 + 64<<10); used > limit {
		t.Errorf("the squashfs uses %d bytes, more than %d: the text is not compressed", used, limit)
	}
	if flags := le.Uint16(im.img[24:]); flags&(0x0001|0x0002|0x0008|0x0800) != 0 {
		t.Errorf("superblock flags %#x say something is stored uncompressed", flags)
	}
	if im.metaRaw != 0 || len(im.inodes) < 2*sqMeta {
		t.Errorf("%d of the inode table's blocks (%d bytes) are stored raw", im.metaRaw, len(im.inodes))
	}
	sizes := map[int][]uint32{} // by file size
	im.each(t, func(typ uint16, in []byte) {
		if typ == sqFile {
			var s []uint32
			for i := 32; i < len(in); i += 4 {
				s = append(s, le.Uint32(in[i:]))
			}
			sizes[int(le.Uint32(in[28:]))] = s
		}
	})
	if s := sizes[len(noise)]; len(s) != 2 || s[0] != sqRaw|uint32(im.blockSize) || s[1] != sqRaw|uint32(im.blockSize) {
		t.Errorf("random file's block sizes %#x, want two raw blocks of %d", s, im.blockSize)
	}
	if s := sizes[len(text)]; len(s) != len(text)/im.blockSize {
		t.Errorf("text's block sizes %#x, want %d blocks", s, len(text)/im.blockSize)
	} else {
		for _, b := range s {
			if b&sqRaw != 0 || int(b) > im.blockSize/10 {
				t.Errorf("text's block sizes %#x: not all compressed", s)
				break
			}
		}
	}
	x := filepath.Join(dir, "x")
	run(t, "unsquashfs", "-d", x, raw)
	w := want{modes: true, res: time.Second}
	compare(t, "unsquashfs", src, hostTree(x), w, nil)
	compare(t, "kernel", src, hostTree(mountSquashfs(t, raw)), w, nil)
	compare(t, "vmdkmount", src, ourTree(t, raw), w, nil)
}

// TestSquashfsLargeFiles: files past what go-diskfs held (~254 MiB), one past 4 GiB (an extended
// inode with 64-bit sizes); their holes stay holes (size-0 blocks), their data blocks are read back.
func TestSquashfsLargeFiles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	rnd := rand.New(rand.NewPCG(5, 6))
	chunk := make([]byte, 300<<10)
	write := func(name string, size int64, at ...int64) {
		f, err := os.Create(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		for _, off := range at {
			for i := range chunk {
				chunk[i] = byte(rnd.Uint32() % 7) // compressible, not zero
			}
			if _, err := f.WriteAt(chunk[:min(int64(len(chunk)), size-off)], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("300m", 300<<20+5, 0, 7<<20+3, 150<<20, 300<<20-100)
	write("5g", 5<<30+77, 1<<20, 4<<30+12345, 5<<30+77-1000)
	raw := filepath.Join(t.TempDir(), "d.raw")
	if _, err := Make(src, raw, Options{FS: "squashfs", Type: "raw"}); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	syscall.Stat(raw, &st)
	if st.Blocks*512 > 16*mib {
		t.Errorf("the image takes %d bytes on disk for ~2 MiB of data", st.Blocks*512)
	}
	im := readSquashfs(t, raw)
	holes := 0
	im.each(t, func(typ uint16, in []byte) {
		if typ == sqLFile {
			for i := 56; i < len(in); i += 4 {
				if binary.LittleEndian.Uint32(in[i:]) == 0 {
					holes++
				}
			}
		}
	})
	if want := (300<<20)/sqBlock + (5<<30)/sqBlock - 20; holes < want {
		t.Errorf("%d hole blocks, want at least %d", holes, want)
	}
	// Hashing 5 GiB through each reader takes a minute here: without -long the big file is read at its
	// data and around it, the rest whole.
	w := want{modes: true, res: time.Second}
	for judge, tr := range map[string]tree{"vmdkmount": ourTree(t, raw), "kernel": hostTree(mountSquashfs(t, raw))} {
		if *long {
			compare(t, judge, src, tr, w, nil)
			continue
		}
		compare(t, judge, src, hiding{tr, "5g"}, w, map[string]bool{"5g": true})
		f, err := tr.Open("5g")
		if err != nil {
			t.Fatalf("%s: %v", judge, err)
		}
		defer f.Close()
		ra, ok := f.(io.ReaderAt)
		if !ok {
			t.Fatalf("%s: its files have no ReadAt", judge)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 5<<30+77 {
			t.Errorf("%s: 5g: %v %v", judge, fi, err)
		}
		host := hostTree(src)
		hf, _ := host.Open("5g")
		defer hf.Close()
		for _, off := range []int64{0, 1<<20 - 5000, 2 << 20, 4<<30 + 12345 - 70000, 5<<30 + 77 - 300000} {
			a, b := make([]byte, 400<<10), make([]byte, 400<<10)
			na, _ := hf.(io.ReaderAt).ReadAt(a, off)
			nb, _ := ra.ReadAt(b, off)
			if na != nb || !bytes.Equal(a[:na], b[:nb]) {
				t.Errorf("%s: 5g at %d: %d bytes differ from the source's %d", judge, off, nb, na)
			}
		}
	}
}

// TestSquashfsRandomTrees: random trees (folders deep and wide, Unicode and 255-byte names, sizes
// around the block size, sparse files, duplicates, symlinks of every kind, modes with setuid and
// sticky bits, owners, times) built and judged by the kernel, unsquashfs and our reader.
func TestSquashfsRandomTrees(t *testing.T) {
	need(t, "unsquashfs", "mount")
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			randomTree(t, src, seed)
			raw := filepath.Join(t.TempDir(), "d.raw")
			if _, err := Make(src, raw, Options{FS: "squashfs", Type: "raw"}); err != nil {
				t.Fatal(err)
			}
			run(t, "unsquashfs", "-stat", raw)
			x := filepath.Join(t.TempDir(), "x")
			run(t, "unsquashfs", "-d", x, raw)
			w := want{modes: true, res: time.Second, links: true, dirTimes: true, linkTimes: true}
			compare(t, "unsquashfs", src, hostTree(x), want{modes: true, res: time.Second, links: true, linkTimes: true}, nil)
			mnt := mountSquashfs(t, raw)
			compare(t, "kernel", src, hostTree(mnt), w, nil)
			sameOwners(t, src, mnt)
			compare(t, "vmdkmount", src, ourTree(t, raw), w, nil)
		})
	}
}

// sameOwners checks every entry under got has the owner and group of its twin under src.
func sameOwners(t *testing.T, src, got string) {
	t.Helper()
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(src, p)
		var a, b syscall.Stat_t
		if err := syscall.Lstat(p, &a); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Lstat(filepath.Join(got, rel), &b); err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if a.Uid != b.Uid || a.Gid != b.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, b.Uid, b.Gid, a.Uid, a.Gid)
		}
		return nil
	})
}

func randomTree(t *testing.T, root string, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 42))
	pieces := []string{"a", "Ünïcødé", "ファイル", "x.txt", "Space Name", "z", "ñ", "emoji-😀", "UPPER", "dot.in.name"}
	name := func() string {
		n := pieces[rnd.IntN(len(pieces))] + fmt.Sprint(rnd.IntN(1000))
		if rnd.IntN(40) == 0 {
			n = strings.Repeat("L", 255-len(n)) + n
		}
		return n
	}
	sizes := []int64{0, 1, 100, 4095, sqBlock - 1, sqBlock, sqBlock + 1, 2*sqBlock + 77, sqWhole, sqWhole + 1, 3*sqBlock + sqWhole}
	var files, dirs []string
	dirs = append(dirs, ".")
	big := filepath.Join(root, "wide")
	os.MkdirAll(big, 0o755)
	for i := range 1500 + rnd.IntN(1000) { // a listing of many metadata blocks
		os.WriteFile(filepath.Join(big, fmt.Sprintf("%s-%04d", name(), i)), nil, 0o644)
	}
	for range 60 {
		d := dirs[rnd.IntN(len(dirs))]
		if rnd.IntN(3) == 0 {
			nd := path.Join(d, name())
			if os.Mkdir(filepath.Join(root, nd), 0o755) == nil {
				dirs = append(dirs, nd)
			}
			continue
		}
		rel := path.Join(d, name())
		p := filepath.Join(root, rel)
		size := sizes[rnd.IntN(len(sizes))]
		data := make([]byte, size)
		switch rnd.IntN(4) {
		case 0: // random
			for i := range data {
				data[i] = byte(rnd.Uint32())
			}
		case 1: // text
			for i := range data {
				data[i] = "abc \n"[rnd.IntN(5)]
			}
		case 2: // zeros: holes
		case 3: // a copy of an earlier file
			if len(files) > 0 {
				if b, err := os.ReadFile(filepath.Join(root, files[rnd.IntN(len(files))])); err == nil {
					data = b
				}
			}
		}
		if os.WriteFile(p, data, 0o644) == nil {
			files = append(files, rel)
		}
	}
	// Symlinks: to a file, to a folder, absolute, dangling, climbing out.
	for i, target := range []string{"", "", "/usr/share", "no/such/thing", "../../outside"} {
		if target == "" && len(files) > 0 {
			target = files[rnd.IntN(len(files))]
		}
		os.Symlink(target, filepath.Join(root, fmt.Sprintf("link%d", i)))
	}
	modes := []fs.FileMode{0o644, 0o600, 0o755, 0o4755 | fs.ModeSetuid, 0o2750 | fs.ModeSetgid, 0o1777 | fs.ModeSticky, 0o444, 0}
	var all []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		all = append(all, p)
		return nil
	})
	for i := len(all) - 1; i >= 0; i-- { // children before their folders: times stay put
		p := all[i]
		fi, _ := os.Lstat(p)
		os.Lchown(p, rnd.IntN(3)*1000+rnd.IntN(2), rnd.IntN(70000))
		if fi.Mode()&fs.ModeSymlink == 0 {
			m := modes[rnd.IntN(len(modes))]
			if fi.IsDir() {
				m |= 0o700 // still walkable by the test
			}
			os.Chmod(p, m.Perm()|m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		tm := time.Unix(rnd.Int64N(1<<32), 0)
		setTimes(p, tm)
	}
}

// hiding is a tree whose root listing leaves one name out.
type hiding struct {
	tree
	name string
}

func (h hiding) ReadDir(n string) ([]fs.DirEntry, error) {
	l, err := h.tree.ReadDir(n)
	if n == "." {
		l = slices.DeleteFunc(l, func(e fs.DirEntry) bool { return e.Name() == h.name })
	}
	return l, err
}

// TestSquashfsSourceChanges: a file that vanishes or shrinks between the listing and the read fails
// the build naming it (small files read ahead, large ones streamed), without a hang.
func TestSquashfsSourceChanges(t *testing.T) {
	for _, c := range []struct {
		name   string
		size   int
		change func(p string) error
	}{
		{"small-gone", 1000, os.Remove},
		{"small-shrunk", 1000, func(p string) error { return os.Truncate(p, 10) }},
		{"big-gone", 3 * sqWhole, os.Remove},
		{"big-shrunk", 3 * sqWhole, func(p string) error { return os.Truncate(p, sqWhole) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			for i := range 200 {
				os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d", i)), bytes.Repeat([]byte{byte(i)}, 3*sqBlock+i), 0o644)
			}
			p := filepath.Join(src, c.name)
			if err := os.WriteFile(p, bytes.Repeat([]byte("x"), c.size), 0o644); err != nil {
				t.Fatal(err)
			}
			kept, err := scan(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.change(p); err != nil {
				t.Fatal(err)
			}
			out, _ := os.Create(filepath.Join(t.TempDir(), "d.raw"))
			defer out.Close()
			if _, err := buildSquashfs(out, 0, src, kept, func(int64) {}); err == nil || !strings.Contains(err.Error(), c.name) {
				t.Fatalf("%v, want an error naming %s", err, c.name)
			}
		})
	}
}

// TestSquashfsSpecialFiles: devices (one with a minor past 255, which takes the wide encoding),
// a FIFO and a socket keep their type, number, mode and owner, as mksquashfs stores them.
func TestSquashfsSpecialFiles(t *testing.T) {
	need(t, "unsquashfs")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "plain"), []byte("x"), 0o644)
	devs := map[string]struct {
		mode         uint32
		major, minor uint32
	}{
		"null": {syscall.S_IFCHR | 0o666, 1, 3},
		"wide": {syscall.S_IFCHR | 0o600, 240, 70000},
		"disk": {syscall.S_IFBLK | 0o660, 7, 300},
		"fifo": {syscall.S_IFIFO | 0o640, 0, 0},
	}
	for name, d := range devs {
		p := filepath.Join(src, name)
		if err := unix.Mknod(p, d.mode, int(unix.Mkdev(d.major, d.minor))); err != nil {
			t.Skipf("mknod %s: %v", name, err)
		}
		os.Chmod(p, fs.FileMode(d.mode&0o777)) // past the umask
		os.Lchown(filepath.Join(src, name), 1234, 567)
	}
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	raw := filepath.Join(t.TempDir(), "d.raw")
	if _, err := Make(src, raw, Options{FS: "squashfs", Type: "raw"}); err != nil {
		t.Fatal(err)
	}
	mnt := mountSquashfs(t, raw)
	ours := ourTree(t, raw)
	for _, name := range []string{"null", "wide", "disk", "fifo", "sock"} {
		var a, b syscall.Stat_t
		syscall.Lstat(filepath.Join(src, name), &a)
		if err := syscall.Lstat(filepath.Join(mnt, name), &b); err != nil {
			t.Errorf("kernel: %s: %v", name, err)
			continue
		}
		if a.Mode != b.Mode || a.Rdev != b.Rdev || a.Uid != b.Uid || a.Gid != b.Gid {
			t.Errorf("kernel: %s: mode %o rdev %#x owner %d:%d, want %o %#x %d:%d", name, b.Mode, b.Rdev, b.Uid, b.Gid, a.Mode, a.Rdev, a.Uid, a.Gid)
		}
		si, _ := os.Lstat(filepath.Join(src, name))
		if gi, err := ours.Lstat(name); err != nil || gi.Mode() != si.Mode() {
			t.Errorf("vmdkmount: %s: %v %v, want %v", name, gi, err, si.Mode())
		}
	}
	// unsquashfs -lls prints a number as rdev>>8, rdev&0xff, right only for small ones: its
	// extraction (mknod, as root) is the judge.
	x := filepath.Join(t.TempDir(), "x")
	run(t, "unsquashfs", "-d", x, raw)
	for _, name := range []string{"null", "wide", "disk", "fifo", "sock"} {
		var a, b syscall.Stat_t
		syscall.Lstat(filepath.Join(src, name), &a)
		if err := syscall.Lstat(filepath.Join(x, name), &b); err != nil {
			if name == "sock" {
				continue // unsquashfs leaves sockets out of an extraction
			}
			t.Errorf("unsquashfs: %s: %v", name, err)
			continue
		}
		if a.Mode != b.Mode || a.Rdev != b.Rdev || a.Uid != b.Uid || a.Gid != b.Gid {
			t.Errorf("unsquashfs: %s: mode %o rdev %#x owner %d:%d, want %o %#x %d:%d", name, b.Mode, b.Rdev, b.Uid, b.Gid, a.Mode, a.Rdev, a.Uid, a.Gid)
		}
	}
}
