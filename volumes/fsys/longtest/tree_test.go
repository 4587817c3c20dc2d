package longtest_test

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

// tree is the generated source: src has every kind of entry, portable only directories and regular
// files with names FAT and exFAT can hold, fat the part of portable that mcopy can write in time.
type tree struct {
	src, portable, fat string
	bytes              int64 // apparent size of src's regular files
	entries            int
}

// systemDocs are host folders copied in whole for a realistic mix of names, sizes and symlinks.
var systemDocs = []string{"/usr/share/doc", "/usr/share/man"}

// bigDirFiles is the entry count of the one large directory (hashed/B-tree directories in every format).
const bigDirFiles = 20000

func buildTree(t *testing.T) *tree {
	t.Helper()
	root := t.TempDir()
	tr := &tree{src: filepath.Join(root, "src"), portable: filepath.Join(root, "portable"), fat: filepath.Join(root, "fat")}
	mkdir(t, tr.src, 0o755)
	for _, d := range systemDocs {
		if _, err := os.Stat(d); err == nil {
			run(t, "cp", "-a", d, filepath.Join(tr.src, filepath.Base(d)))
		} else {
			t.Logf("%s absent: the generated part alone is compared", d)
		}
	}
	synthetic(t, filepath.Join(tr.src, "gen"))
	tr.bytes, tr.entries = measure(t, tr.src)
	mkdir(t, tr.portable, 0o755)
	copyPortable(t, tr.src, tr.portable)
	mkdir(t, tr.fat, 0o755)
	linkFATTree(t, tr.portable, tr.fat)
	return tr
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stamps are the mtimes given to generated entries: sub-second parts, before 1970, the 2038 edge
// and after it.
var stamps = []time.Time{
	time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC),
	time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC),
	time.Date(1985, 7, 8, 9, 10, 12, 0, time.UTC),
	time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),
	time.Date(2040, 2, 29, 23, 59, 58, 990000000, time.UTC),
	time.Date(2024, 11, 21, 13, 0, 1, 10000000, time.UTC),
}

// synthetic writes the generated part: a large directory, awkward names, deep nesting, sparse files,
// odd sizes, links, special files and modes, owners and xattrs.
func synthetic(t *testing.T, gen string) {
	rng := rand.New(rand.NewPCG(5, 2026))
	mkdir(t, gen, 0o755)

	many := filepath.Join(gen, "many")
	mkdir(t, many, 0o755)
	for i := range bigDirFiles {
		write(t, filepath.Join(many, fmt.Sprintf("f%05d.txt", i)), []byte(strings.Repeat(fmt.Sprintf("%d ", i), i%97)))
	}

	names := filepath.Join(gen, "names")
	mkdir(t, names, 0o755)
	// The longest names in one-, two- and three-byte characters; names needing UTF-16 surrogate pairs
	// (😀, 𝄞); names FAT would alter or refuse (trailing dot or space, reserved characters, controls).
	for _, n := range []string{
		strings.Repeat("a", 255), strings.Repeat("é", 127), strings.Repeat("日", 85),
		"Grüße, Ünïcödé ñame.txt", "日本語のファイル名.txt", "Ελληνικά", "emoji-😀-𝄞.txt",
		"with space ", "trailing.dot.", "MiXeD.CaSe", "mixed.case.2", "a.b.c.d.e", ".hidden", "-dash",
		"semi;colon,comma=eq+plus[brackets]", "tab\there", "new\nline", "quote\"s", "back\\slash", "co:lon", "star*", "what?",
	} {
		write(t, filepath.Join(names, n), []byte(n+"\n"))
	}

	deep := gen
	for i := range 40 {
		deep = filepath.Join(deep, fmt.Sprintf("level-%02d", i))
	}
	mkdir(t, deep, 0o755)
	write(t, filepath.Join(deep, "bottom.txt"), []byte("forty levels down\n"))

	sizes := filepath.Join(gen, "sizes")
	mkdir(t, sizes, 0o755)
	for _, n := range []int{0, 1, 2, 511, 512, 513, 1023, 1025, 4095, 4096, 4097, 8191, 12289, 65535, 65537,
		131071, 1<<20 + 3, 2<<20 - 1, 3<<20 + 777} {
		random := make([]byte, n)
		for i := range random {
			random[i] = byte(rng.Uint32())
		}
		write(t, filepath.Join(sizes, fmt.Sprintf("random-%d", n)), random)
		text := []byte(strings.Repeat("compressible text line\n", n/23+1)[:n])
		write(t, filepath.Join(sizes, fmt.Sprintf("text-%d", n)), text)
	}

	sparse := filepath.Join(gen, "sparse")
	mkdir(t, sparse, 0o755)
	check(t, os.WriteFile(filepath.Join(sparse, "hole-only"), nil, 0o644))
	check(t, os.Truncate(filepath.Join(sparse, "hole-only"), 24<<20))
	for _, c := range []struct {
		name      string
		off, size int64
	}{{"data-in-middle", 10 << 20, 20 << 20}, {"data-at-end", 16<<20 - 4096, 16 << 20}, {"data-at-start", 0, 12 << 20},
		{"odd-hole", 5<<20 + 17, 9<<20 + 333}} {
		p := filepath.Join(sparse, c.name)
		f, err := os.Create(p)
		check(t, err)
		_, err = f.WriteAt([]byte(strings.Repeat(c.name, 500)), c.off)
		check(t, err)
		check(t, f.Truncate(c.size))
		check(t, f.Close())
	}

	links := filepath.Join(gen, "links")
	mkdir(t, filepath.Join(links, "sub"), 0o755)
	write(t, filepath.Join(links, "target.txt"), []byte("linked\n"))
	check(t, os.Link(filepath.Join(links, "target.txt"), filepath.Join(links, "hard-1")))
	check(t, os.Link(filepath.Join(links, "target.txt"), filepath.Join(links, "sub", "hard-2")))
	check(t, os.Link(filepath.Join(many, "f00042.txt"), filepath.Join(links, "hard-to-many")))
	for name, target := range map[string]string{
		"rel": "target.txt", "up": "../sizes/random-4096", "abs": "/usr/share/doc", "dangling": "no/such/file",
		"dir": "sub", "loop-a": "loop-b", "loop-b": "loop-a", "unicode": "日本語のファイル名.txt",
		// 1017 bytes (XFS and libisofs take at most 1024), not ending in "/": Rock Ridge SL records cannot
		// keep a trailing slash, so libisofs drops it and the image no longer matches the source.
		"long":   strings.Repeat("long-target/", 84) + "end-of-it",
		"medium": strings.Repeat("m", 60), // the shortest target ext4 keeps in a block, not in the inode
	} {
		check(t, os.Symlink(target, filepath.Join(links, name)))
	}

	special := filepath.Join(gen, "special")
	mkdir(t, special, 0o755)
	check(t, unix.Mkfifo(filepath.Join(special, "fifo"), 0o640))
	check(t, unix.Mknod(filepath.Join(special, "char-null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	check(t, unix.Mknod(filepath.Join(special, "block-loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	makeSocket(t, filepath.Join(special, "socket"))
	for name, mode := range map[string]os.FileMode{"setuid": os.ModeSetuid | 0o755, "setgid": os.ModeSetgid | 0o750,
		"private": 0o600, "none": 0, "all": 0o777} {
		p := filepath.Join(special, name)
		write(t, p, []byte(name+"\n"))
		check(t, os.Chmod(p, mode))
	}
	mkdir(t, filepath.Join(special, "sticky"), os.ModeSticky|0o777)
	mkdir(t, filepath.Join(special, "setgid-dir"), os.ModeSetgid|0o775)

	owners := filepath.Join(gen, "owners")
	mkdir(t, owners, 0o755)
	for i, id := range [][2]int{{1000, 1000}, {12345, 54321}, {65534, 65534}, {0, 100}, {4000000, 7}} {
		p := filepath.Join(owners, fmt.Sprintf("owned-%d", i))
		write(t, p, []byte("owner\n"))
		check(t, os.Chown(p, id[0], id[1]))
	}
	check(t, os.Symlink("owned-1", filepath.Join(owners, "link")))
	check(t, os.Lchown(filepath.Join(owners, "link"), 2222, 3333))
	mkdir(t, filepath.Join(owners, "dir"), 0o750)
	check(t, os.Chown(filepath.Join(owners, "dir"), 501, 20))

	xattrs := filepath.Join(gen, "xattrs")
	mkdir(t, xattrs, 0o755)
	for _, c := range []struct {
		name  string
		attrs int
		size  int
	}{{"one-small", 1, 10}, {"empty-value", 1, 0}, {"large-value", 1, 3000}, {"several", 8, 40}, {"many", 60, 30}} {
		p := filepath.Join(xattrs, c.name)
		write(t, p, []byte(c.name+"\n"))
		for i := range c.attrs {
			check(t, unix.Setxattr(p, fmt.Sprintf("user.attr%02d", i), []byte(strings.Repeat(string(rune('a'+i%26)), c.size)), 0))
		}
	}
	check(t, unix.Setxattr(xattrs, "user.on-a-directory", []byte("dir value"), 0))

	// Times last: creating entries moves directory mtimes. Generated directories keep their own.
	i := 0
	check(t, filepath.WalkDir(gen, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ts := stamps[i%len(stamps)]
		i++
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()),
			unix.NsecToTimespec(ts.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
	}))
}

// measure sums the apparent size of regular files and counts entries.
func measure(t *testing.T, root string) (int64, int) {
	var total int64
	n := 0
	check(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	}))
	return total, n
}

// fatName reports whether a name can be stored unchanged as a FAT or exFAT long name: no reserved
// characters or controls, no trailing dot or space, at most 255 UTF-16 units and (for mtools, which
// keeps only the low 16 bits of such characters) nothing outside the Basic Multilingual Plane.
func fatName(name string) bool {
	if strings.ContainsAny(name, "\"*/:<>?\\|") || strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r > 0xFFFF {
			return false
		}
	}
	return len(utf16.Encode([]rune(name))) <= 255
}

// copyPortable copies directories and regular files that FAT and exFAT can hold, keeping mtimes; of
// names equal but for case (which those formats cannot keep apart) only the first is copied.
func copyPortable(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	check(t, err)
	seen := map[string]bool{}
	for _, e := range ents {
		if !fatName(e.Name()) || seen[strings.ToUpper(e.Name())] || !(e.IsDir() || e.Type().IsRegular()) {
			continue
		}
		seen[strings.ToUpper(e.Name())] = true
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		fi, err := e.Info()
		check(t, err)
		if e.IsDir() {
			mkdir(t, d, 0o755)
			copyPortable(t, s, d)
		} else {
			copyFile(t, s, d)
		}
		check(t, os.Chtimes(d, fi.ModTime(), fi.ModTime()))
	}
}

func copyFile(t *testing.T, src, dst string) {
	in, err := os.Open(src)
	check(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	check(t, err)
	_, err = io.Copy(out, in)
	check(t, err)
	check(t, out.Close())
}

// crowded is the entry count above which a directory keeps only 8.3 names in the FAT tree: for each
// long name mcopy searches the directory once per numeric tail it tries (~1, ~2, …), so the 18,000
// long man page names of one folder take hours, and their LFN slots would pass FAT's 65,536 entry
// limit anyway. The 20,000-file folder of 8.3 names stays whole.
const crowded = 5000

// linkFATTree hard-links the portable tree's files into dst, leaving out long names of crowded folders.
func linkFATTree(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	check(t, err)
	for _, e := range ents {
		if len(ents) > crowded && !shortName(e.Name()) {
			continue
		}
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		fi, err := e.Info()
		check(t, err)
		if e.IsDir() {
			mkdir(t, d, 0o755)
			linkFATTree(t, s, d)
			check(t, os.Chtimes(d, fi.ModTime(), fi.ModTime()))
		} else {
			check(t, os.Link(s, d))
		}
	}
}

// shortName reports an 8.3 name: at most 8 characters, a dot and at most 3 more, ASCII letters and
// digits only (either case).
func shortName(name string) bool {
	base, ext, _ := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") {
		return false
	}
	for _, r := range base + ext {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// makeSocket leaves a Unix socket file behind: the listener is closed without unlinking it.
func makeSocket(t *testing.T, p string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	check(t, err)
	l.SetUnlinkOnClose(false)
	check(t, l.Close())
}
