package xfs

import (
	"testing"
)

// TestHashLookup looks names (every seventh) of every multi-block fixture directory up through the hash index and
// checks it against the full listing; absent names must not be found.
func TestHashLookup(t *testing.T) {
	for _, name := range []string{"v5", "v5-1k", "v4"} {
		f := fixtureFS(t, name)
		for _, dir := range []string{"block", "leaf", "node", "btree"} {
			ip, err := f.walk(dir)
			if err != nil {
				if name != "v5" && dir == "btree" {
					continue
				}
				t.Fatalf("%s %s: %v", name, dir, err)
			}
			d, err := f.readDir(ip)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range d.ents {
				if i%7 != 0 && i != len(d.ents)-1 { // a sample keeps the race-detector run short
					continue
				}
				got, ok, err := f.hashLookup(ip, want.name)
				if err != nil || !ok || got != want {
					t.Fatalf("%s %s/%s: hash lookup gave %+v %v %v, want %+v", name, dir, want.name, got, ok, err, want)
				}
				if _, ok, err := f.hashLookup(ip, want.name+"~"); ok || err != nil {
					t.Fatalf("%s %s/%s~: found=%v err=%v for an absent name", name, dir, want.name, ok, err)
				}
			}
			t.Logf("%s %s: %d names", name, dir, len(d.ents))
		}
	}
}

func TestDaHash(t *testing.T) {
	// Values computed by hand from the kernel's definition (xfs_da_hashname).
	cases := map[string]uint32{"": 0, "a": 0x61, "ab": 0x61<<7 ^ 0x62, "abc": 0x61<<14 ^ 0x62<<7 ^ 0x63,
		"abcd": 0x61<<21 ^ 0x62<<14 ^ 0x63<<7 ^ 0x64}
	for in, want := range cases {
		if got := daHash(in); got != want {
			t.Errorf("daHash(%q) = %#x, want %#x", in, got, want)
		}
	}
}

// TestShortformWideInodes decodes a hand-built shortform directory in the 8-byte inode form (written as
// the kernel's xfs_dir2_sf_put_ino lays it out): count stays the number of entries.
func TestShortformWideInodes(t *testing.T) {
	b := []byte{2, 1, 0, 0, 0, 0, 0, 0, 0, 128}                    // count 2, i8count 1, parent 128
	b = append(b, 1, 0, 0x60, 'a', 1, 0, 0, 0, 1, 0, 0, 0, 5)      // "a" → inode 2^32+5, ftype regular
	b = append(b, 2, 0, 0x70, 'b', 'c', 2, 0, 0, 0, 0, 0, 0, 0, 9) // "bc" → inode 9, ftype dir
	ents, err := parseShortformDir(b, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []dirent{{"a", 1<<32 + 5, 1}, {"bc", 9, 2}}
	if len(ents) != 2 || ents[0] != want[0] || ents[1] != want[1] {
		t.Fatalf("got %+v, want %+v", ents, want)
	}
}
