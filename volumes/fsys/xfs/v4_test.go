package xfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// srcEntry is one entry of the tree mkfs.xfs built the v4 fixture from, as GNU tar recorded it.
type srcEntry struct {
	hdr  *tar.Header
	data []byte
}

func readSourceTar(t *testing.T) map[string]srcEntry {
	t.Helper()
	fh, err := os.Open(fixturePath(t, "v4-src.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]srcEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "" {
			name = "."
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = srcEntry{hdr: h, data: data}
	}
}

var tarTypes = map[byte]uint32{tar.TypeReg: fsys.S_IFREG, tar.TypeDir: fsys.S_IFDIR, tar.TypeSymlink: fsys.S_IFLNK,
	tar.TypeChar: fsys.S_IFCHR, tar.TypeBlock: fsys.S_IFBLK, tar.TypeFifo: fsys.S_IFIFO}

// TestV4AgainstSource compares the v4 fixture (made by an mkfs.xfs protofile, since this kernel no
// longer mounts v4) with the source tree GNU tar archived: names, types, modes, owners, sizes, bytes,
// symlink targets and device numbers.
func TestV4AgainstSource(t *testing.T) {
	src := readSourceTar(t)
	ours := fixtureFS(t, "v4")
	if ours.sb.crc || ours.sb.hasFType || ours.sb.dirBlkLog == 0 || ours.sb.blockSize != 1024 {
		t.Fatalf("fixture geometry is not the v4 / no-ftype / 1K-block / 4K-dir-block one: %+v", ours.sb)
	}
	seen := map[string]bool{}
	err := fs.WalkDir(ours, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		seen[p] = true
		want, ok := src[p]
		if !ok {
			t.Errorf("%s: not in the source tree", p)
			return nil
		}
		fi, err := ours.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if d.Type() != fi.Mode().Type() {
			t.Errorf("%s: dir entry type %v, lstat %v", p, d.Type(), fi.Mode().Type())
		}
		compareSource(t, ours, p, fsys.StatOf(fi), want)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range src {
		if !seen[p] {
			t.Errorf("%s: missing from our tree", p)
		}
	}
}

func compareSource(t *testing.T, ours *FS, p string, st *fsys.Stat, want srcEntry) {
	h := want.hdr
	if typ := tarTypes[h.Typeflag]; st.Mode&fsys.S_IFMT != typ {
		t.Errorf("%s: type %#o, want %#o", p, st.Mode&fsys.S_IFMT, typ)
		return
	}
	if st.Mode&0o7777 != uint32(h.Mode)&0o7777 || st.Uid != uint32(h.Uid) || st.Gid != uint32(h.Gid) {
		t.Errorf("%s: mode %#o uid %d gid %d, want %#o %d %d", p, st.Mode&0o7777, st.Uid, st.Gid, h.Mode&0o7777, h.Uid, h.Gid)
	}
	switch h.Typeflag {
	case tar.TypeReg:
		got, err := fs.ReadFile(ours, p)
		if err != nil || !bytes.Equal(got, want.data) || st.Size != int64(len(want.data)) {
			t.Errorf("%s: content differs (%d bytes, want %d; err %v)", p, len(got), len(want.data), err)
		}
	case tar.TypeSymlink:
		if got, err := ours.ReadLink(p); err != nil || got != h.Linkname {
			t.Errorf("%s: target %q (%v), want %q", p, got, err, h.Linkname)
		}
	case tar.TypeChar, tar.TypeBlock:
		if want := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)); st.Rdev != want {
			t.Errorf("%s: rdev %#x, want %#x", p, st.Rdev, want)
		}
	}
}

// TestV4InodeNumbers checks our inode numbers and names against xfs_db's own directory listing.
func TestV4InodeNumbers(t *testing.T) {
	if _, err := exec.LookPath("xfs_db"); err != nil {
		t.Skip("xfs_db not installed")
	}
	img := imageFile(t, "v4")
	ours := openFile(t, img)
	for _, dir := range []string{".", "short", "block", "leaf", "node", "modes", "ünïcødé_dïr"} {
		out, err := exec.Command("xfs_db", "-r", "-c", "path /"+strings.TrimPrefix(dir, "."), "-c", "ls", img).Output()
		if err != nil {
			t.Fatalf("xfs_db ls %s: %v", dir, err)
		}
		want := map[string]uint64{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) < 7 || f[len(f)-1] != "(good)" {
				t.Fatalf("xfs_db ls %s: unexpected line %q", dir, line)
			}
			name := f[len(f)-2]
			if name == "." || name == ".." {
				continue
			}
			ino, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("xfs_db ls %s: %q: %v", dir, line, err)
			}
			want[name] = ino
		}
		ents, err := ours.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != len(want) {
			t.Errorf("%s: %d entries, xfs_db lists %d", dir, len(ents), len(want))
		}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Errorf("%s/%s: %v", dir, e.Name(), err)
				continue
			}
			if got := fsys.StatOf(fi).Ino; got != want[e.Name()] {
				t.Errorf("%s/%s: inode %d, xfs_db says %d", dir, e.Name(), got, want[e.Name()])
			}
		}
	}
}

// TestV4Xattrs checks the attributes xfs_db's attr_set (libxfs) put on the v4 fixture: shortform, leaf
// and node forms in the v4 layouts, each value n bytes of 'v' as attr_set writes them.
func TestV4Xattrs(t *testing.T) {
	manifest, err := os.ReadFile(fixturePath(t, "v4-xattrs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		var p, name string
		var n int
		if _, err := fmt.Sscan(line, &p, &name, &n); err != nil {
			t.Fatalf("manifest line %q: %v", line, err)
		}
		p = strings.TrimPrefix(p, "/")
		if want[p] == nil {
			want[p] = map[string]int{}
		}
		want[p][name] = n
	}
	ours := fixtureFS(t, "v4")
	shape := func(p string) *inode {
		ip, err := ours.walk(p)
		if err != nil {
			t.Fatal(err)
		}
		return ip
	}
	if ip := shape("tiny"); ip.aformat != fmtLocal {
		t.Errorf("tiny: attribute fork format %d, want shortform", ip.aformat)
	}
	if m := attrRootMagic(t, ours, shape("short/f1")); m != attrLeafMagicV4 {
		t.Errorf("short/f1: attribute root magic %#x, want a v4 leaf", m)
	}
	if m := attrRootMagic(t, ours, shape("short/f2")); m != daNodeMagicV4 {
		t.Errorf("short/f2: attribute root magic %#x, want a v4 node", m)
	}
	for p, attrs := range want {
		names, err := ours.ListXattr(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(names) != len(attrs) {
			t.Errorf("%s: %d attributes, want %d: %q", p, len(names), len(attrs), names)
		}
		for name, n := range attrs {
			v, err := ours.GetXattr(p, name)
			if err != nil || !bytes.Equal(v, bytes.Repeat([]byte("v"), n)) {
				t.Errorf("%s %s: %d bytes (%v), want %d of 'v'", p, name, len(v), err, n)
			}
		}
	}
}
