package ext4

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkHtree looks every name of an indexed directory up through the hash index alone, on a cold
// cache, and checks that absent names are reported absent by the index.
func checkHtree(t *testing.T, img, dir string) {
	t.Helper()
	full := openImage(t, img)
	in := in0(t, full, dir)
	if in.flags&flagIndex == 0 {
		t.Fatalf("%s is not indexed; the test would not cover the hash index", dir)
	}
	listing, err := full.directory(in)
	if err != nil {
		t.Fatal(err)
	}
	cold := openImage(t, img)
	for _, e := range listing.entries {
		got, found, usable := cold.htreeLookup(in, e.name)
		if !usable || !found || got.ino != e.ino {
			t.Fatalf("%s/%q via the index: found %v usable %v inode %d, want %d", dir, e.name, found, usable, got.ino, e.ino)
		}
	}
	for i := range 200 {
		name := fmt.Sprintf("absent-%d-%s", i, strings.Repeat("ü", i%7))
		if _, found, usable := cold.htreeLookup(in, name); !usable || found {
			t.Fatalf("absent %q: found %v usable %v", name, found, usable)
		}
	}
	if _, ok := cold.dirs.get(in.ino); ok {
		t.Error("index lookups read the whole directory")
	}
}

func TestHtreeLookupFixtures(t *testing.T) {
	n := 0
	for _, gz := range fixtures(t) {
		img := gunzipTemp(t, gz)
		v := openImage(t, img)
		in, err := v.lookup("test", "many", false)
		if err != nil || in.flags&flagIndex == 0 {
			continue // ext2-rev0 has no index; 4 KiB-block images fit "many" in a few blocks unindexed
		}
		t.Run(filepath.Base(gz), func(t *testing.T) { checkHtree(t, img, "many") })
		n++
	}
	if n < 3 {
		t.Errorf("only %d fixtures have an indexed directory", n)
	}
}

// TestHtreeHashVariants has the kernel build indexed directories with each hash algorithm, with
// signed and unsigned name bytes, and non-ASCII names (where the two differ).
func TestHtreeHashVariants(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("filling an image through a loop mount needs root")
	}
	t.Parallel()
	for _, alg := range []string{"legacy", "half_md4", "tea"} {
		for _, flags := range []string{"1", "2"} { // s_flags: 1 signed, 2 unsigned hash
			t.Run(alg+"-flags"+flags, func(t *testing.T) {
				dir := t.TempDir()
				img := filepath.Join(dir, "img")
				run := func(name string, args ...string) {
					t.Helper()
					if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
						t.Fatalf("%s %v: %v: %s", name, args, err, out)
					}
				}
				run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-O", "^has_journal", img, "8M")
				// The kernel indexes new directories with s_def_hash_version, signed or unsigned per s_flags.
				ssv := exec.Command("debugfs", "-w", "-f", "-", img)
				ssv.Stdin = strings.NewReader("ssv def_hash_version " + alg + "\nssv flags " + flags + "\n")
				if out, err := ssv.CombinedOutput(); err != nil {
					t.Fatalf("debugfs: %v: %s", err, out)
				}
				mnt := filepath.Join(dir, "mnt")
				if err := os.Mkdir(mnt, 0o755); err != nil {
					t.Fatal(err)
				}
				run("mount", "-o", "loop", img, mnt)
				mounted := true
				defer func() {
					if mounted {
						exec.Command("umount", mnt).Run()
					}
				}()
				var names strings.Builder
				for i := range 600 {
					fmt.Fprintf(&names, "név-%d-ÄÖÜ-%s\x00", i, strings.Repeat("é", i%9))
				}
				if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
					t.Fatal(err)
				}
				touch := exec.Command("xargs", "-0", "touch")
				touch.Dir = filepath.Join(mnt, "d")
				touch.Stdin = strings.NewReader(names.String())
				if out, err := touch.CombinedOutput(); err != nil {
					t.Fatalf("touch: %v: %s", err, out)
				}
				mounted = false
				run("umount", mnt)
				v := openImage(t, img)
				if root, err := v.directory(in0(t, v, "d")); err != nil || len(root.entries) != 600 {
					t.Fatalf("listing: %d entries, %v", len(root.entries), err)
				}
				blk := make([]byte, 1024)
				d, _ := v.dataOf(in0(t, v, "d"))
				if _, err := d.ReadAt(blk, 0); err != nil || blk[28] != map[string]byte{"legacy": 0, "half_md4": 1, "tea": 2}[alg] {
					t.Fatalf("directory indexed with hash version %d, want %s (%v)", blk[28], alg, err)
				}
				if v.hashUnsigned != (flags == "2") {
					t.Fatalf("unsigned hash flag not read")
				}
				checkHtree(t, img, "d")
			})
		}
	}
}
