package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// TestReparseTargets pins the link targets of the fixture's reparse points; the expected strings
// are what ntfs-3g printed for them with its mount point taken off.
func TestReparseTargets(t *testing.T) {
	v := openImage(t, fixture(t, "basic"), Options{})
	for name, want := range map[string]string{
		"reparse/sub/rel":              "../../small.txt",
		"reparse/sub/abs":              "/small.txt",
		"reparse/dirlink-as-file":      "/.NTFS-3G/C:/links",
		"reparse/sub/deeper/junction":  "/links",
		"reparse/junction-missing":     "/.NTFS-3G/C:/no/such/dir",
		"reparse/junction-other-drive": "/links",
		"link-to-small":                "small.txt",
		"abs-link":                     "/compressed/text.txt",
	} {
		if got, err := v.ReadLink(name); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	// Following the junction lands in links/.
	if data, err := fs.ReadFile(v, "reparse/sub/deeper/junction/original.txt"); err != nil || !bytes.HasPrefix(data, []byte("linked line 1\n")) {
		t.Errorf("through the junction: %q, %v", data, err)
	}
	data, err := fs.ReadFile(v, "reparse/unknown")
	if err != nil || string(data) != "data behind an unknown reparse tag\n" {
		t.Errorf("unknown reparse tag: %q, %v", data, err)
	}
	if _, err := v.Open("reparse/wof"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("WOF-compressed file: %v, want ErrUnsupported", err)
	}
	if fi, err := v.Lstat("reparse/wof"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("WOF-compressed file: lstat %v, %v", fi, err)
	}
	if _, err := v.ReadLink("small.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink of a regular file: %v", err)
	}
}

// TestBtimeMatchesNTFS3g compares Btime with ntfs-3g's system.ntfs_crtime_be attribute (the raw
// creation time of $STANDARD_INFORMATION, which statx does not carry through FUSE).
func TestBtimeMatchesNTFS3g(t *testing.T) {
	img := fixture(t, "basic")
	host := mountNTFS3g(t, img)
	v := openImage(t, img, Options{})
	n := 0
	filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		buf := make([]byte, 8)
		if _, err := unix.Lgetxattr(p, "system.ntfs_crtime_be", buf); err != nil {
			return nil // symlinks: ntfs-3g answers only for the target
		}
		want := ntfsTime(binary.BigEndian.Uint64(buf))
		fi, err := v.Lstat(rel)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if got := fsys.StatOf(fi).Btime; !got.Equal(want) {
			t.Errorf("%s: btime %v, ntfs-3g %v", rel, got, want)
		}
		n++
		return nil
	})
	if n < 100 {
		t.Errorf("only %d creation times compared", n)
	}
}

// TestStreams reads alternate data streams through OpenStream and checks them against ntfs-3g's
// user.* attributes, and that a missing stream and a missing attribute report their errors.
func TestStreams(t *testing.T) {
	img := fixture(t, "basic")
	host := mountNTFS3g(t, img)
	v := openImage(t, img, Options{})
	for _, c := range []struct{ file, stream string }{{"ads.txt", "stream"}, {"ads.txt", "big"}, {"ads.txt", "empty"}, {"adsdir", "dirstream"}} {
		want := make([]byte, 1<<16)
		n, err := unix.Getxattr(filepath.Join(host, c.file), "user."+c.stream, want)
		if err != nil {
			t.Fatalf("host getxattr %s %s: %v", c.file, c.stream, err)
		}
		f, err := v.OpenStream(c.file, c.stream)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, want[:n]) {
			t.Errorf("%s:%s: %d bytes, %v; ntfs-3g has %d", c.file, c.stream, len(got), err, n)
		}
		fi, _ := f.Stat()
		if fi.Size() != int64(n) || fi.Name() != filepath.Base(c.file)+":"+c.stream {
			t.Errorf("%s:%s: stat name %q size %d", c.file, c.stream, fi.Name(), fi.Size())
		}
	}
	main, err := v.OpenStream("ads.txt", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(main); string(got) != "main data\n" {
		t.Errorf("unnamed stream %q", got)
	}
	if _, err := v.OpenStream("ads.txt", "nope"); !errors.Is(err, ErrNoStream) {
		t.Errorf("missing stream: %v", err)
	}
	if _, err := v.GetXattr("ads.txt", "user.nope"); !errors.Is(err, fsys.ErrNoXattr) {
		t.Errorf("missing xattr: %v", err)
	}
}

// TestConcurrentReads reads every regular file of the fixture at random offsets from many
// goroutines at once and checks each piece against ntfs-3g's copy of the file.
func TestConcurrentReads(t *testing.T) {
	img := fixture(t, "basic")
	host := mountNTFS3g(t, img)
	v := openImage(t, img, Options{})
	type file struct {
		name string
		data []byte
	}
	var files []file
	filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(host, p)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) > 0 {
				files = append(files, file{rel, data})
			}
		}
		return nil
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				f := files[rng.IntN(len(files))]
				h, err := v.Open(f.name)
				if err != nil {
					t.Error(err)
					return
				}
				off := rng.Int64N(int64(len(f.data)))
				buf := make([]byte, 1+rng.IntN(70000))
				n, err := h.(io.ReaderAt).ReadAt(buf, off)
				h.Close()
				want := f.data[off:min(int(off)+len(buf), len(f.data))]
				if !bytes.Equal(buf[:n], want) || (n < len(buf) && err != io.EOF) {
					t.Errorf("%s at %d: %d bytes, %v", f.name, off, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestInitializedSize reads non-resident streams (plain and compressed) whose initialized size is cut
// short: the bytes before it come from disk (checked against ntfs-3g's copy of the file), the rest
// read as zeros. ntfs-3g never leaves such a file behind, so each attribute is a real one, shortened.
func TestInitializedSize(t *testing.T) {
	img := fixture(t, "basic")
	host := mountNTFS3g(t, img)
	v := openImage(t, img, Options{})
	for _, name := range []string{"plain.txt", "compressed/text.txt"} {
		want, err := os.ReadFile(filepath.Join(host, name))
		if err != nil {
			t.Fatal(err)
		}
		nd, err := v.walk("test", name)
		if err != nil {
			t.Fatal(err)
		}
		a := *nd.ino.find(attrData, "")
		if a.resident {
			t.Fatalf("%s is resident", name)
		}
		initialized := int64(len(want)/3 + 1)
		a.initSize = initialized
		s, err := v.newStream(nd.ino.num+1<<40, &a) // a cache identity of its own
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if n, err := s.ReadAt(got, 0); n != len(want) || err != nil {
			t.Fatalf("%s: read %d, %v", name, n, err)
		}
		if !bytes.Equal(got[:initialized], want[:initialized]) {
			t.Errorf("%s: initialized part differs from ntfs-3g's copy", name)
		}
		if !bytes.Equal(got[initialized:], make([]byte, int64(len(want))-initialized)) {
			t.Errorf("%s: bytes past the initialized size are not zero", name)
		}
	}
}

// TestEncryptedRefused marks a real file's $DATA as EFS-encrypted (ntfs-3g cannot create such a
// file): opening it must fail with ErrUnsupported rather than hand out ciphertext.
func TestEncryptedRefused(t *testing.T) {
	v := openImage(t, fixture(t, "basic"), Options{})
	nd, err := v.walk("test", "plain.txt")
	if err != nil {
		t.Fatal(err)
	}
	enc := *nd.ino
	enc.attrs = append([]*attribute(nil), nd.ino.attrs...)
	for i, a := range enc.attrs {
		if a.typ == attrData && a.name == "" {
			c := *a
			c.flags |= attrFlagEncrypted
			enc.attrs[i] = &c
		}
	}
	nd.ino = &enc
	fi, err := v.info(nd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.openData(nd, "plain.txt", "", fi); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("encrypted file opened: %v", err)
	}
}
