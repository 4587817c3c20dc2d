package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// badEntryImage builds a 1 KiB-block ext4 image (no checksums, no hash index, so the kernel reads the
// patched blocks as they are) whose directory d spans several blocks: 120 files with names of one
// length, and malware.exe.
func badEntryImage(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src", "d")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 120 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("entry-%03d-of-the-listing", i)), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "malware.exe"), []byte("MZ planted"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(tmp, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^metadata_csum,^dir_index,^has_journal",
		"-d", filepath.Join(tmp, "src"), img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entryAt is where the directory entry named name starts in the image (its name follows the 8-byte
// header).
func entryAt(t *testing.T, b []byte, name string) int {
	t.Helper()
	i := bytes.Index(b, []byte(name))
	if i < direntHeader || bytes.Contains(b[i+1:], []byte(name)) {
		t.Fatalf("%q is not in the image once", name)
	}
	return i - direntHeader
}

func namesOf(ents []fs.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// One malformed entry hides nothing else: a NUL or '/' in a name and a second ".." leave out that entry
// alone, a bad record length the rest of its block (as the kernel's readdir skips it), and
// malware.exe, elsewhere, lists and opens. Each listing is compared with the kernel's loop mount.
func TestBadDirectoryEntrySkipped(t *testing.T) {
	orig := badEntryImage(t)
	all := namesOf(mustReadDir(t, openBytes(t, orig), "d"))
	if len(all) != 121 {
		t.Fatalf("the image lists %d entries in d", len(all))
	}
	bs := 1024
	malwareBlock := entryAt(t, orig, "malware.exe") / bs
	// A victim in another block than malware.exe, with more entries after it in its block.
	var victim string
	for i := range 120 {
		name := fmt.Sprintf("entry-%03d-of-the-listing", i)
		if at := entryAt(t, orig, name); at/bs != malwareBlock && at%bs < bs/2 && at%bs > 64 {
			victim = name
			break
		}
	}
	if victim == "" {
		t.Fatal("no entry to damage outside malware.exe's block")
	}
	// A malformed record loses everything from it to the end of its block.
	restOfBlock := func(b []byte, at int) []string {
		var out []string
		for _, n := range all {
			if e := bytes.Index(b, []byte(n)); e >= at && e/bs == at/bs {
				out = append(out, n)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		patch func(b []byte, at int)
		// gone: the names our listing leaves out (the kernel's may differ where noted)
		gone func(b []byte, at int) []string
	}{
		{"NUL in a name", func(b []byte, at int) { b[at+direntHeader+5] = 0 }, nil},
		{"slash in a name", func(b []byte, at int) { b[at+direntHeader+5] = '/' }, nil},
		{"second dotdot", func(b []byte, at int) { b[at+6] = 2; copy(b[at+direntHeader:], "..") }, nil},
		{"empty name", func(b []byte, at int) { b[at+6] = 0 }, nil},
		{"bad rec_len", func(b []byte, at int) { binary.LittleEndian.PutUint16(b[at+4:], 6) }, restOfBlock},
		{"inode past the volume", func(b []byte, at int) { binary.LittleEndian.PutUint32(b[at:], 1<<30) }, restOfBlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			at := entryAt(t, b, victim)
			gone := []string{victim}
			if tc.gone != nil {
				gone = tc.gone(b, at)
			}
			tc.patch(b, at)
			v := openBytes(t, b)
			got := namesOf(mustReadDir(t, v, "d"))
			want := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(gone, n) })
			if !slices.Equal(got, want) {
				t.Errorf("listed %d entries, want %d (all but %d)", len(got), len(want), len(gone))
			}
			if data, err := fs.ReadFile(v, "d/malware.exe"); err != nil || string(data) != "MZ planted" {
				t.Errorf("malware.exe: %q, %v", data, err)
			}
			if _, err := v.Stat("d/" + victim); err == nil {
				t.Errorf("the damaged entry %s still resolves", victim)
			}
			kernel, kerr := kernelListing(t, b)
			t.Logf("kernel: %d entries, %v; ours: %d entries", len(kernel), kerr, len(got))
			if !slices.Contains(kernel, "malware.exe") && kerr == nil {
				t.Error("the kernel does not list malware.exe: the patch is not what the test means")
			}
			// Where the kernel lists the directory, it lists what we list, less names the VFS cannot
			// carry: a name cut at its NUL. A '/' makes getdents fail (verify_dirent_name), after the
			// entries before it: those are a subset of ours.
			kept := slices.DeleteFunc(slices.Clone(kernel), func(n string) bool { return !slices.Contains(all, n) })
			switch {
			case kerr != nil:
				for _, n := range kernel {
					if !slices.Contains(got, n) {
						t.Errorf("the kernel lists %q before its error, we do not", n)
					}
				}
			case !slices.Equal(kept, got):
				t.Errorf("the kernel lists %d of the image's names, we list %d", len(kept), len(got))
			}
		})
	}
}

func mustReadDir(t *testing.T, v *FS, name string) []fs.DirEntry {
	t.Helper()
	ents, err := v.ReadDir(name)
	if err != nil {
		t.Fatalf("ReadDir %s: %v", name, err)
	}
	return ents
}

// kernelListing loop-mounts b and lists d (nil and no error when loop mounts are not possible).
func kernelListing(t *testing.T, b []byte) ([]string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, nil
	}
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := mountRO(t, img)
	f, err := os.Open(filepath.Join(mnt, "d"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	if err == nil {
		if data, rerr := os.ReadFile(filepath.Join(mnt, "d", "malware.exe")); rerr != nil || string(data) != "MZ planted" {
			t.Errorf("the kernel reads malware.exe as %q, %v", data, rerr)
		}
	}
	return names, err
}
