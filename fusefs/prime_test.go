package fusefs_test

import (
	"bytes"
	"fmt"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// countingTree counts the reads made of its files, by anyone: the FUSE layer's READs and its primer.
type countingTree struct {
	fsys.FS
	reads atomic.Int64
}

type countingFile struct {
	fsys.File
	t *countingTree
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	f.t.reads.Add(1)
	return f.File.ReadAt(p, off)
}

func (t *countingTree) Open(name string) (iofs.File, error) {
	f, err := t.FS.Open(name)
	if ff, ok := f.(fsys.File); ok && err == nil {
		return countingFile{ff, t}, nil
	}
	return f, err
}

func (t *countingTree) OpenInode(ino uint64, name string) (fsys.File, error) {
	f, err := t.FS.(fsys.InodeOpener).OpenInode(ino, name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, t}, nil
}

// settle waits until the tree has seen no read for a while: the primer has finished.
func (t *countingTree) settle(tb testing.TB) {
	tb.Helper()
	last, still := t.reads.Load(), 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if n := t.reads.Load(); n != last {
			last, still = n, 0
		} else if still++; still == 15 {
			return
		}
	}
	tb.Fatal("reads of the tree did not stop")
}

// While files are being read, the files of a directory being listed are stored in the kernel's page
// cache, so reading them asks nothing of the tree; a listing with no reads going on stores nothing. The
// bytes read either way equal the kernel's loop mount of the same ext4 image.
func TestPrimedFilesReadFromPageCache(t *testing.T) {
	needMounts(t)
	needTools(t, "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	r := rand.New(rand.NewPCG(7, 7))
	// Sizes around pages and around the 128 KiB stored of each file.
	sizes := []int{1, 100, 4095, 4096, 4097, 5000, 65536, 128<<10 - 1, 128 << 10, 128<<10 + 1, 300 << 10, 1<<20 + 3}
	for _, d := range []string{"listed", "primed"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
		for i := range 60 {
			b := make([]byte, sizes[i%len(sizes)])
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			if err := os.WriteFile(filepath.Join(src, d, fmt.Sprintf("f%02d", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(src, d, "empty"), nil, 0o644)
	}
	os.WriteFile(filepath.Join(src, "start"), []byte("a read that turns priming on"), 0o644)
	img := filepath.Join(dir, "ext4.img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "32M")
	kern := filepath.Join(dir, "kernel")
	os.Mkdir(kern, 0o755)
	run(t, "mount", "-o", "loop,ro,noatime", img, kern)
	defer run(t, "umount", kern)

	tr := imageTree(t, img)
	tree := &countingTree{FS: tr}
	mnt := mountTree(t, filepath.Join(dir, "mnt"), tree)

	// Listing alone (ls -l, find): nothing read, nothing stored.
	listed, err := os.ReadDir(filepath.Join(mnt, "listed"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := tree.reads.Load(); n != 0 {
		t.Fatalf("listing a directory with no reads going on read its files %d times", n)
	}
	for _, e := range listed {
		if in, _ := cachedPages(t, filepath.Join(mnt, "listed", e.Name())); in != 0 {
			t.Errorf("listed/%s: %d pages cached though nothing was read", e.Name(), in)
		}
	}

	// A read, then a listing: the listed files are stored, and reading them asks nothing of the tree.
	// This machine may page out cold page-cache pages on its own (proactive reclaim), so a file is
	// read through the cache only where the kernel still holds all of its first pages (mincore).
	if _, err := os.ReadFile(filepath.Join(mnt, "start")); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(mnt, "primed"))
	if err != nil || len(ents) != 61 {
		t.Fatalf("listing: %d entries, %v", len(ents), err)
	}
	tree.settle(t)
	whole := 0
	for _, e := range ents {
		p := filepath.Join("primed", e.Name())
		in, pages := cachedPages(t, filepath.Join(mnt, p))
		if pages == 0 || in < pages {
			continue
		}
		whole++
		want, err := os.ReadFile(filepath.Join(kern, p))
		if err != nil {
			t.Fatal(err)
		}
		before := tree.reads.Load()
		f, err := os.Open(filepath.Join(mnt, p))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, min(len(want), 128<<10))
		_, err = f.ReadAt(got, 0)
		f.Close()
		if err != nil || !bytes.Equal(got, want[:len(got)]) {
			t.Errorf("%s: the first %d bytes differ from the kernel's (%v)", p, len(got), err)
		}
		if n := tree.reads.Load() - before; n != 0 {
			t.Errorf("%s: reading its cached first %d bytes read the tree %d times", p, len(got), n)
		}
	}
	if whole < 54 {
		t.Errorf("only %d of the 60 primed files are in the page cache", whole)
	}
	// Past the end of a file, its last page reads as zeros, as the kernel's own would.
	f, err := os.Open(filepath.Join(mnt, "primed", "f05"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 8192, syscall.PROT_READ, syscall.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m[5000:], make([]byte, 8192-5000)) {
		t.Error("f05: bytes past the end of the file are not zero")
	}
	syscall.Munmap(m)

	// Whole files, primed and not, equal the kernel's; the unprimed ones are read from the tree.
	for _, d := range []string{"primed", "listed"} {
		before := tree.reads.Load()
		for i := range 60 {
			p := filepath.Join(d, fmt.Sprintf("f%02d", i))
			want, _ := os.ReadFile(filepath.Join(kern, p))
			got, err := os.ReadFile(filepath.Join(mnt, p))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s differs from the kernel's (%d bytes against %d, %v)", p, len(got), len(want), err)
			}
		}
		if n := tree.reads.Load() - before; d == "listed" && n < 60 {
			t.Errorf("reading the 60 unprimed files read the tree only %d times", n)
		}
	}
}

// cachedPages reports how many of the pages holding a file's first 128 KiB are in the kernel's page
// cache, asking mincore of a mapping that is never touched, so nothing is read.
func cachedPages(t *testing.T, path string) (in, pages int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	n := int(min(st.Size(), 128<<10))
	if n == 0 {
		return 0, 0
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	vec := make([]byte, (n+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore %s: %v", path, e)
	}
	for _, v := range vec {
		in += int(v & 1)
	}
	return in, len(vec)
}
