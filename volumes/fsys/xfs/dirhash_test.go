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
