package regf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/regf/regftest"
)

// nkUTF16 is a key cell whose name is stored as UTF-16LE (no compressed-name flag).
func nkUTF16(name string, parent, sk uint32) []byte {
	u := utf16.Encode([]rune(name))
	c := regftest.NK("", 0, parent, sk)
	binary.LittleEndian.PutUint16(c[2:], 0)
	n := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(n[2*i:], r)
	}
	binary.LittleEndian.PutUint16(c[0x48:], uint16(len(n)))
	return append(c, n...)
}

func list(sig string, entries []uint32, width int) []byte {
	c := make([]byte, 4+width*len(entries))
	copy(c, sig)
	binary.LittleEndian.PutUint16(c[2:], uint16(len(entries)))
	for i, e := range entries {
		binary.LittleEndian.PutUint32(c[4+i*width:], e)
	}
	return c
}

func u32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// vk is a value cell named name (Latin-1) of type typ whose data is at data (size bytes).
func vk(name string, typ Type, size, data uint32) []byte {
	c := make([]byte, 0x14+len(name))
	copy(c, "vk")
	binary.LittleEndian.PutUint16(c[2:], uint16(len(name)))
	binary.LittleEndian.PutUint32(c[4:], size)
	binary.LittleEndian.PutUint32(c[8:], data)
	binary.LittleEndian.PutUint32(c[0x0C:], uint32(typ))
	binary.LittleEndian.PutUint16(c[0x10:], vkCompName)
	copy(c[0x14:], name)
	return c
}

// crafted is a hive with what hivex never writes: an ri index over an li and an lh list, a key
// named in UTF-16, a class name and a 20000-byte big-data value. Offsets of its cells are returned
// for the hostile variants to patch.
type crafted struct {
	b                                     *regftest.Builder
	root, sk, ri, li, lh, big, vlist, val uint32
	db, segs                              uint32
	keys                                  []uint32
	blob                                  []byte
}

func newCrafted() *crafted {
	c := &crafted{b: regftest.NewBuilder()}
	b := c.b
	c.root = b.Add(regftest.NK("ROOT", nkRoot|0x08, 0, 0))
	c.sk = b.Add(regftest.SK(0))
	b.Set(c.sk, 4, c.sk)
	b.Set(c.sk, 8, c.sk)
	b.Set(c.root, 0x2C, c.sk)
	for _, name := range []string{"Alpha", "Beta", "Gamma"} {
		c.keys = append(c.keys, b.Add(regftest.NK(name, 0, c.root, c.sk)))
	}
	c.keys = append(c.keys, b.Add(nkUTF16("Ωmega", c.root, c.sk)))
	c.big = c.keys[1]
	c.li = b.Add(list("li", c.keys[:2], 4))
	hashes := []uint32{c.keys[2], hash("Gamma"), c.keys[3], 0x12345}
	lh := list("lh", nil, 8)
	binary.LittleEndian.PutUint16(lh[2:], 2)
	c.lh = b.Add(append(lh, u32s(hashes...)...))
	c.ri = b.Add(list("ri", []uint32{c.li, c.lh}, 4))
	b.Set(c.root, 0x14, 4)
	b.Set(c.root, 0x1C, c.ri)
	// The class name of Alpha.
	cls := b.Add([]byte{'C', 0, 'l', 0, 's', 0})
	b.Set(c.keys[0], 0x30, cls)
	binary.LittleEndian.PutUint16(b.Cells[int(c.keys[0])-hbinHeader+4+0x4A:], 6)
	// Beta holds "blob", 20000 bytes in two big-data segments, and an inline DWORD.
	c.blob = make([]byte, 20000)
	for i := range c.blob {
		c.blob[i] = byte(i * 7 / 3)
	}
	var segs []uint32
	for off := 0; off < len(c.blob); off += bigDataSegment {
		segs = append(segs, b.Add(c.blob[off:min(off+bigDataSegment, len(c.blob))]))
	}
	c.segs = b.Add(u32s(segs...))
	c.db = b.Add(append([]byte{'d', 'b', byte(len(segs)), 0}, u32s(c.segs)...))
	c.val = b.Add(vk("blob", Binary, uint32(len(c.blob)), c.db))
	inline := b.Add(vk("inline", Dword, 0x80000004, 0x01020304))
	c.vlist = b.Add(u32s(c.val, inline))
	b.Set(c.big, 0x24, 2)
	b.Set(c.big, 0x28, c.vlist)
	return c
}

func hash(name string) uint32 { h, _ := nameHash(name); return h }

func (c *crafted) bytes() []byte { return c.b.Bytes(c.root) }

func openBytes(t testing.TB, b []byte) (*Hive, error) {
	t.Helper()
	return Open(bytes.NewReader(b), int64(len(b)), "test")
}

func TestCraftedAgainstHivex(t *testing.T) {
	c := newCrafted()
	h, err := openBytes(t, c.bytes())
	if err != nil {
		t.Fatal(err)
	}
	root, _ := h.Root()
	subs, err := root.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range subs {
		names = append(names, s.Name)
	}
	if got := fmtList(names); got != "Alpha Beta Gamma Ωmega" {
		t.Errorf("subkeys %q", got)
	}
	if cls, err := subs[0].Class(); cls != "Cls" || err != nil {
		t.Errorf("class %q %v", cls, err)
	}
	if sd, err := subs[0].Security(); len(sd) != 20 || err != nil {
		t.Errorf("security %x %v", sd, err)
	}
	if k, err := h.Open("ωMEGA"); err != nil || k.Name != "Ωmega" {
		t.Errorf("ωMEGA: %v", err)
	}
	v, err := subs[1].Value("BLOB")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := v.Data(); err != nil || !bytes.Equal(d, c.blob) {
		t.Fatalf("blob: %d bytes, %v", len(d), err)
	}
	if v, _ := subs[1].Value("inline"); v == nil {
		t.Fatal("no inline value")
	} else if n, err := v.Uint(); n != 0x01020304 || err != nil {
		t.Errorf("inline %#x %v", n, err)
	}
	// hivex reads the same hive the same way.
	needHivex(t)
	compareWithHivex(t, writeHive(t, c.bytes()))
}

func fmtList(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// readAll opens the hive and walks it, reading every value, as the fuzz target does.
func readAll(b []byte) error {
	h, err := Open(bytes.NewReader(b), int64(len(b)), "test")
	if err != nil {
		return err
	}
	root, err := h.Root()
	if err != nil {
		return err
	}
	// The lookups inspection makes, through lh hashes and case folding.
	for _, p := range []string{`Beta`, `ωMEGA`, `Microsoft\Windows NT\CurrentVersion`, `Select`} {
		if k, err := h.Open(p); err == nil {
			k.Value("blob")
			k.Value("@")
		}
	}
	var first error
	err = root.Walk(func(_ string, k *Key) error {
		k.Class()
		k.Security()
		vs, err := k.Values()
		if err != nil {
			return err
		}
		for _, v := range vs {
			if _, err := v.Data(); err != nil && first == nil {
				first = err
			}
			v.String()
			v.Strings()
			v.Uint()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return first
}

// TestHostile: each damaged hive gives an ErrCorrupt error, no panic, no hang.
func TestHostile(t *testing.T) {
	cases := []struct {
		name  string
		patch func(c *crafted, b []byte)
	}{
		{"cell outside its hive bin", func(c *crafted, b []byte) { c.b.Set(c.root, 0x1C, 0x100000) }},
		{"cell offset in the bin header", func(c *crafted, b []byte) { c.b.Set(c.root, 0x1C, 0x8) }},
		{"unaligned cell offset", func(c *crafted, b []byte) { c.b.Set(c.root, 0x1C, c.li+4) }},
		{"cell size past its bin", func(c *crafted, b []byte) {
			binary.LittleEndian.PutUint32(c.b.Cells[c.li-hbinHeader:], 0xFFF00000)
		}},
		{"subkey list names its own key", func(c *crafted, b []byte) { c.b.Set(c.li, 4, c.root) }},
		{"subkey list names a key twice", func(c *crafted, b []byte) { c.b.Set(c.li, 8, c.keys[0]) }},
		{"index root inside an index root", func(c *crafted, b []byte) { c.b.Set(c.ri, 4, c.ri) }},
		{"key tree loop", func(c *crafted, b []byte) {
			// Alpha's subkeys are the root's own list: Alpha contains itself.
			c.b.Set(c.keys[0], 0x14, 4)
			c.b.Set(c.keys[0], 0x1C, c.ri)
		}},
		{"key reached twice", func(c *crafted, b []byte) {
			// Gamma's subkeys are Alpha and Beta again: a walk would see them twice.
			c.b.Set(c.keys[2], 0x14, 2)
			c.b.Set(c.keys[2], 0x1C, c.li)
		}},
		{"list count past its cell", func(c *crafted, b []byte) {
			binary.LittleEndian.PutUint16(c.b.Cells[c.li-hbinHeader+4+2:], 60000)
		}},
		{"value claiming 2 GiB", func(c *crafted, b []byte) { c.b.Set(c.val, 4, 0x7FFFFFFF) }},
		{"value claiming 2 GiB in one cell", func(c *crafted, b []byte) {
			c.b.Minor = 3 // no big data before 1.4: the data cell must hold it all
			c.b.Set(c.val, 4, 0x7FFFFFF8)
		}},
		{"inline value of 8 bytes", func(c *crafted, b []byte) { c.b.Set(c.val, 4, 0x80000008) }},
		{"big-data chain loops", func(c *crafted, b []byte) {
			segs := c.b.Cells[c.segs-hbinHeader+4:]
			copy(segs[4:8], segs[0:4])
		}},
		{"big-data list longer than its cell", func(c *crafted, b []byte) {
			c.b.Cells[c.db-hbinHeader+4+2] = 200
		}},
		{"value count past its list", func(c *crafted, b []byte) { c.b.Set(c.big, 0x24, 1<<30) }},
		{"value listed twice", func(c *crafted, b []byte) { c.b.Set(c.vlist, 4, c.val) }},
		{"key name past its cell", func(c *crafted, b []byte) {
			binary.LittleEndian.PutUint16(c.b.Cells[c.keys[0]-hbinHeader+4+0x48:], 4000)
		}},
		{"root is not a key", func(c *crafted, b []byte) { c.root = c.li }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCrafted()
			tc.patch(c, nil)
			err := readAll(c.bytes())
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
	// Damage to the base block and the bins.
	good := newCrafted().bytes()
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
	}{
		{"bad checksum", func(b []byte) { b[0x1FC]++ }},
		{"no signature", func(b []byte) { b[0] = 'x'; regftest.FixChecksum(b) }},
		{"version 2", func(b []byte) { b[0x14] = 2; regftest.FixChecksum(b) }},
		{"bin of size 0", func(b []byte) { binary.LittleEndian.PutUint32(b[baseBlockSize+8:], 0) }},
		{"bin past the file", func(b []byte) { binary.LittleEndian.PutUint32(b[baseBlockSize+8:], 1<<30) }},
		{"bin offset field wrong", func(b []byte) { binary.LittleEndian.PutUint32(b[baseBlockSize+4:], 4096) }},
		{"truncated", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tc.patch == nil {
				b = b[:baseBlockSize+100]
			} else {
				tc.patch(b)
			}
			if err := readAll(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzHive(f *testing.F) {
	f.Add(regftest.MinimalHive("ROOT"))
	f.Add(newCrafted().bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		readAll(b)
	})
}

func BenchmarkReadAll(b *testing.B) {
	h := newCrafted().bytes()
	for i := 0; i < b.N; i++ {
		readAll(h)
	}
}
