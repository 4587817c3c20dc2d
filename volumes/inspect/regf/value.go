package regf

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Type is a value's data type (REG_SZ, REG_DWORD…).
type Type uint32

// Value types.
const (
	None                     Type = 0
	String                   Type = 1 // REG_SZ
	ExpandString             Type = 2 // REG_EXPAND_SZ
	Binary                   Type = 3
	Dword                    Type = 4 // little-endian
	DwordBigEndian           Type = 5
	Link                     Type = 6
	MultiString              Type = 7
	ResourceList             Type = 8
	FullResourceDescriptor   Type = 9
	ResourceRequirementsList Type = 10
	Qword                    Type = 11
)

var typeNames = [...]string{"REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD", "REG_DWORD_BIG_ENDIAN",
	"REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST", "REG_FULL_RESOURCE_DESCRIPTOR",
	"REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("REG_%#x", uint32(t))
}

// Value is one value of a key (a vk cell).
type Value struct {
	h   *Hive
	off uint32
	// Name is the value's name; "" is the key's default value.
	Name string
	Type Type
	size uint32
	data uint32
}

const vkCompName = 0x0001

// Values returns the key's values in the hive's order.
func (k *Key) Values() ([]*Value, error) {
	if k.nValues == 0 || k.values == 0xFFFFFFFF {
		return nil, nil
	}
	c, err := k.h.cell(k.values)
	if err != nil {
		return nil, fmt.Errorf("key %s value list: %w", k.Name, err)
	}
	if uint64(k.nValues)*4 > uint64(len(c)) {
		return nil, k.h.errf("key %s: %d values in a %d-byte list", k.Name, k.nValues, len(c))
	}
	out := make([]*Value, 0, k.nValues)
	seen := map[uint32]bool{}
	for i := 0; i < int(k.nValues); i++ {
		off := le32(c[4*i:])
		if seen[off] {
			return nil, k.h.errf("key %s: value %#x listed twice", k.Name, off)
		}
		seen[off] = true
		v, err := k.h.value(off)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Value returns the value called name ("" or "@" for the default value), case-insensitively.
func (k *Key) Value(name string) (*Value, error) {
	if name == "@" {
		name = ""
	}
	vs, err := k.Values()
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if equalFold(v.Name, name) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("regf %s: value %q of key %s: %w", k.h.name, name, k.Name, ErrNotFound)
}

func (h *Hive) value(off uint32) (*Value, error) {
	c, err := h.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 0x14 || string(c[:2]) != "vk" {
		return nil, h.errf("cell %#x is not a value (vk)", off)
	}
	n := int(le16(c[2:]))
	if 0x14+n > len(c) {
		return nil, h.errf("value %#x: name of %d bytes overruns its cell", off, n)
	}
	return &Value{h: h, off: off, Name: decodeName(c[0x14:0x14+n], le16(c[0x10:])&vkCompName != 0),
		size: le32(c[4:]), data: le32(c[8:]), Type: Type(le32(c[0x0C:]))}, nil
}

// Size is the data length the value claims.
func (v *Value) Size() int { return int(v.size &^ 0x80000000) }

// Data returns the value's raw bytes: stored in the vk cell itself (4 bytes or fewer), in one data
// cell, or spread over the segments of a big-data (db) cell.
func (v *Value) Data() ([]byte, error) {
	h := v.h
	if v.size&0x80000000 != 0 {
		n := v.size &^ 0x80000000
		if n > 4 {
			return nil, h.errf("value %q: %d bytes claimed inside its value cell", v.Name, n)
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v.data)
		return b[:n], nil
	}
	if v.size == 0 {
		return []byte{}, nil
	}
	c, err := h.cell(v.data)
	if err != nil {
		return nil, fmt.Errorf("value %q data: %w", v.Name, err)
	}
	if v.size > bigDataSegment && h.Minor >= 4 && len(c) >= 8 && string(c[:2]) == "db" {
		return v.bigData(c)
	}
	if int64(v.size) > int64(len(c)) {
		return nil, h.errf("value %q claims %d bytes; its data cell has %d", v.Name, v.size, len(c))
	}
	return c[:v.size], nil
}

// bigData gathers the segments of a db cell, refusing a segment list that repeats a segment.
func (v *Value) bigData(db []byte) ([]byte, error) {
	h := v.h
	n := int(le16(db[2:]))
	if int64(v.size) > int64(n)*bigDataSegment {
		return nil, h.errf("value %q claims %d bytes in %d big-data segments", v.Name, v.size, n)
	}
	list, err := h.cell(le32(db[4:]))
	if err != nil {
		return nil, fmt.Errorf("value %q big-data list: %w", v.Name, err)
	}
	if 4*n > len(list) {
		return nil, h.errf("value %q: %d big-data segments in a %d-byte list", v.Name, n, len(list))
	}
	var out []byte
	seen := map[uint32]bool{}
	for i := 0; i < n && len(out) < int(v.size); i++ {
		off := le32(list[4*i:])
		if seen[off] {
			return nil, h.errf("value %q: big-data segment %#x used twice (a loop)", v.Name, off)
		}
		seen[off] = true
		seg, err := h.cell(off)
		if err != nil {
			return nil, fmt.Errorf("value %q big-data segment %d: %w", v.Name, i, err)
		}
		take := min(bigDataSegment, int(v.size)-len(out))
		if take > len(seg) {
			return nil, h.errf("value %q: big-data segment %d has %d bytes, %d needed", v.Name, i, len(seg), take)
		}
		out = append(out, seg[:take]...)
	}
	if len(out) != int(v.size) {
		return nil, h.errf("value %q: big-data segments hold %d of %d bytes", v.Name, len(out), v.size)
	}
	return out, nil
}

// String returns a REG_SZ, REG_EXPAND_SZ or REG_LINK value as text, up to its first NUL.
func (v *Value) String() (string, error) {
	switch v.Type {
	case String, ExpandString, Link:
	default:
		return "", fmt.Errorf("regf %s: value %q is %s, not a string", v.h.name, v.Name, v.Type)
	}
	b, err := v.Data()
	if err != nil {
		return "", err
	}
	s := utf16String(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// Strings returns a REG_MULTI_SZ value's strings (up to the empty string that ends the list).
func (v *Value) Strings() ([]string, error) {
	if v.Type != MultiString {
		return nil, fmt.Errorf("regf %s: value %q is %s, not REG_MULTI_SZ", v.h.name, v.Name, v.Type)
	}
	b, err := v.Data()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(utf16String(b), "\x00") {
		if s == "" {
			break
		}
		out = append(out, s)
	}
	return out, nil
}

// Uint returns a REG_DWORD, REG_DWORD_BIG_ENDIAN or REG_QWORD value.
func (v *Value) Uint() (uint64, error) {
	b, err := v.Data()
	if err != nil {
		return 0, err
	}
	switch {
	case v.Type == Dword && len(b) >= 4:
		return uint64(le32(b)), nil
	case v.Type == DwordBigEndian && len(b) >= 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	case v.Type == Qword && len(b) >= 8:
		return le64(b), nil
	}
	return 0, fmt.Errorf("regf %s: value %q is %s of %d bytes, not a number", v.h.name, v.Name, v.Type, len(b))
}
