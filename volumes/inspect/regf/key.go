package regf

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// Key is one registry key (an nk cell).
type Key struct {
	h   *Hive
	off uint32
	// Name is the key's name (the root key's name is whatever the hive was created with).
	Name string
	// LastWritten is when the key or its values last changed.
	LastWritten time.Time
	flags       uint16
	parent      uint32
	nSubkeys    uint32
	subkeys     uint32
	nValues     uint32
	values      uint32
	security    uint32
	class       uint32
	classLen    uint16
}

const (
	nkCompName = 0x20 // the name is stored in Latin-1, one byte a character
	nkRoot     = 0x04
)

// Root returns the hive's root key.
func (h *Hive) Root() (*Key, error) { return h.key(h.root) }

// Offset is the key's cell offset, unique in the hive.
func (k *Key) Offset() uint32 { return k.off }

func (h *Hive) key(off uint32) (*Key, error) {
	c, err := h.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 0x4C || string(c[:2]) != "nk" {
		return nil, h.errf("cell %#x is not a key (nk)", off)
	}
	k := &Key{h: h, off: off, flags: le16(c[2:]), LastWritten: filetime(le64(c[4:])), parent: le32(c[0x10:]),
		nSubkeys: le32(c[0x14:]), subkeys: le32(c[0x1C:]), nValues: le32(c[0x24:]), values: le32(c[0x28:]),
		security: le32(c[0x2C:]), class: le32(c[0x30:]), classLen: le16(c[0x4A:])}
	n := int(le16(c[0x48:]))
	if 0x4C+n > len(c) {
		return nil, h.errf("key %#x: name of %d bytes overruns its cell", off, n)
	}
	k.Name = decodeName(c[0x4C:0x4C+n], k.flags&nkCompName != 0)
	return k, nil
}

// decodeName decodes a key or value name: Latin-1 when compressed, else UTF-16LE.
func decodeName(b []byte, latin1 bool) string {
	if latin1 {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	return utf16String(b)
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// Class returns the key's class name ("" when it has none).
func (k *Key) Class() (string, error) {
	if k.class == 0xFFFFFFFF || k.classLen == 0 {
		return "", nil
	}
	c, err := k.h.cell(k.class)
	if err != nil {
		return "", fmt.Errorf("key %s class: %w", k.Name, err)
	}
	if int(k.classLen) > len(c) {
		return "", k.h.errf("key %s: class name of %d bytes overruns its cell", k.Name, k.classLen)
	}
	return utf16String(c[:k.classLen]), nil
}

// Security returns the key's security descriptor (self-relative, as stored in its sk cell).
func (k *Key) Security() ([]byte, error) {
	c, err := k.h.cell(k.security)
	if err != nil {
		return nil, fmt.Errorf("key %s security: %w", k.Name, err)
	}
	if len(c) < 0x14 || string(c[:2]) != "sk" {
		return nil, k.h.errf("key %s: cell %#x is not a security cell (sk)", k.Name, k.security)
	}
	n := int(le32(c[0x10:]))
	if n > len(c)-0x14 {
		return nil, k.h.errf("key %s: security descriptor of %d bytes overruns its cell", k.Name, n)
	}
	return c[0x14 : 0x14+n], nil
}

// subkeyEntry is one entry of a subkey list: the key's offset and, for lh lists, its name hash.
type subkeyEntry struct {
	off    uint32
	hash   uint32
	hashed bool
}

// subkeyEntries reads the key's subkey list, following one level of ri indirection, and refuses lists
// that name a key twice (a loop).
func (k *Key) subkeyEntries() ([]subkeyEntry, error) {
	if k.nSubkeys == 0 || k.subkeys == 0xFFFFFFFF {
		return nil, nil
	}
	var out []subkeyEntry
	seen := map[uint32]bool{}
	var walk func(off uint32, nested bool) error
	walk = func(off uint32, nested bool) error {
		c, err := k.h.cell(off)
		if err != nil {
			return fmt.Errorf("key %s subkey list: %w", k.Name, err)
		}
		if len(c) < 4 {
			return k.h.errf("key %s: subkey list %#x is %d bytes", k.Name, off, len(c))
		}
		sig, n := string(c[:2]), int(le16(c[2:]))
		width := 4
		if sig == "lf" || sig == "lh" {
			width = 8
		}
		if 4+n*width > len(c) {
			return k.h.errf("key %s: subkey list %#x claims %d entries in %d bytes", k.Name, off, n, len(c))
		}
		for i := 0; i < n; i++ {
			e := subkeyEntry{off: le32(c[4+i*width:])}
			switch sig {
			case "lh":
				e.hash, e.hashed = le32(c[8+i*width:]), true
			case "ri":
				if nested {
					return k.h.errf("key %s: index root %#x inside an index root", k.Name, off)
				}
				if err := walk(e.off, true); err != nil {
					return err
				}
				continue
			case "lf", "li":
			default:
				return k.h.errf("key %s: cell %#x is not a subkey list (%q)", k.Name, off, sig)
			}
			if seen[e.off] || e.off == k.off {
				return k.h.errf("key %s: subkey list loops (key %#x listed again)", k.Name, e.off)
			}
			seen[e.off] = true
			out = append(out, e)
		}
		return nil
	}
	if err := walk(k.subkeys, false); err != nil {
		return nil, err
	}
	return out, nil
}

// Subkeys returns the key's subkeys in the hive's order (sorted by upper-case name).
func (k *Key) Subkeys() ([]*Key, error) {
	es, err := k.subkeyEntries()
	if err != nil {
		return nil, err
	}
	out := make([]*Key, 0, len(es))
	for _, e := range es {
		sk, err := k.h.key(e.off)
		if err != nil {
			return nil, fmt.Errorf("subkey of %s: %w", k.Name, err)
		}
		out = append(out, sk)
	}
	return out, nil
}

// Subkey returns the subkey called name, compared case-insensitively as Windows does.
func (k *Key) Subkey(name string) (*Key, error) {
	es, err := k.subkeyEntries()
	if err != nil {
		return nil, err
	}
	// An lh entry carries a hash of the upper-case name: for an ASCII name, entries whose hash differs
	// cannot match, so their cells need not be read. A writer with wrong hashes costs a second pass.
	want, ascii := nameHash(name)
	for pass := 0; pass < 2; pass++ {
		for _, e := range es {
			if pass == 0 && ascii && e.hashed && e.hash != want {
				continue
			}
			if pass == 1 && !(ascii && e.hashed && e.hash != want) {
				continue
			}
			sk, err := k.h.key(e.off)
			if err != nil {
				return nil, fmt.Errorf("subkey of %s: %w", k.Name, err)
			}
			if equalFold(sk.Name, name) {
				return sk, nil
			}
		}
	}
	return nil, fmt.Errorf("regf %s: key %s\\%s: %w", k.h.name, k.Name, name, ErrNotFound)
}

// nameHash is the lh list hash of name (h = h*37 + upper(c)); ascii says whether it is exact.
func nameHash(name string) (uint32, bool) {
	var h uint32
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 0x80 {
			return 0, false
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		h = h*37 + uint32(c)
	}
	return h, true
}

// equalFold compares names as the registry does: case-insensitively, by simple upper-casing.
func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// Open returns the key at path below k: names separated by backslashes ("Microsoft\Windows NT").
func (k *Key) Open(path string) (*Key, error) {
	cur := k
	for _, part := range strings.Split(path, `\`) {
		if part == "" {
			continue
		}
		next, err := cur.Subkey(part)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// Open returns the key at path from the root ("Microsoft\Windows NT\CurrentVersion").
func (h *Hive) Open(path string) (*Key, error) {
	root, err := h.Root()
	if err != nil {
		return nil, err
	}
	return root.Open(path)
}

// Walk calls fn for k and every key below it, depth first in hive order, with the path from k. It
// refuses trees deeper than MaxDepth and keys reached twice (a loop, or a key shared by two parents,
// which would make the walk exponential).
func (k *Key) Walk(fn func(path string, key *Key) error) error {
	seen := map[uint32]bool{}
	var walk func(path string, key *Key, depth int) error
	walk = func(path string, key *Key, depth int) error {
		if depth > MaxDepth {
			return key.h.errf("key %s is nested deeper than %d levels", path, MaxDepth)
		}
		if seen[key.off] {
			return key.h.errf("key %s is reached twice (a loop in the key tree)", path)
		}
		seen[key.off] = true
		if err := fn(path, key); err != nil {
			return err
		}
		subs, err := key.Subkeys()
		if err != nil {
			return err
		}
		for _, s := range subs {
			p := s.Name
			if path != "" {
				p = path + `\` + s.Name
			}
			if err := walk(p, s, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("", k, 0)
}
