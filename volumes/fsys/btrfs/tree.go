package btrfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
)

const (
	maxLevel   = 8
	headerSize = 0x65
	itemSize   = 25
	ptrSize    = 33
)

// Item key types.
const (
	typeInodeItem  = 1
	typeInodeRef   = 12
	typeInodeExt   = 13
	typeXattr      = 24
	typeDirItem    = 84
	typeDirIndex   = 96
	typeExtentData = 108
	typeRootItem   = 132
	typeRootRef    = 156
	typeChunkItem  = 228
	typeDevItem    = 216
)

type key struct {
	objectid uint64
	typ      uint8
	offset   uint64
}

func (k key) less(o key) bool {
	if k.objectid != o.objectid {
		return k.objectid < o.objectid
	}
	if k.typ != o.typ {
		return k.typ < o.typ
	}
	return k.offset < o.offset
}

func readKey(b []byte) key {
	return key{binary.LittleEndian.Uint64(b), b[8], binary.LittleEndian.Uint64(b[9:])}
}

// node is a parsed tree block: leaf items (keys with their data) or child pointers.
type node struct {
	level    uint8
	keys     []key
	data     [][]byte // leaf: each item's data
	children []uint64 // internal: child block addresses
}

// readNode reads and checks the tree block at logical address addr, expected at the given level.
func (f *FS) readNode(addr uint64, level uint8) (*node, error) {
	if n, ok := f.nodes.Get(addr); ok {
		if n.level != level {
			return nil, fmt.Errorf("%w: tree block %d is level %d, expected %d", ErrCorrupt, addr, n.level, level)
		}
		return n, nil
	}
	// A copy that fails its checks is damage in that copy: the next copy (or parity rebuild) may hold
	// the block intact, as the kernel finds it.
	var b []byte
	var firstErr error
	ways := f.cm.mirrors(addr)
	for mirror := 0; mirror < ways; mirror++ {
		b = make([]byte, f.sb.nodeSize)
		err := f.cm.readMirror(b, addr, mirror)
		if err != nil {
			err = fmt.Errorf("tree block %d: %w", addr, err)
		} else {
			err = f.checkBlock(b, addr, level)
		}
		if err == nil {
			if mirror > 0 {
				slog.Warn("btrfs: tree block read from another copy", "block", addr, "copy", mirror, "first copy", firstErr)
			}
			firstErr = nil
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		if ways > 1 {
			return nil, fmt.Errorf("%w (and its %d other copies)", firstErr, ways-1)
		}
		return nil, firstErr
	}
	n := &node{level: level}
	count := int(binary.LittleEndian.Uint32(b[0x60:]))
	body := b[headerSize:]
	per := itemSize
	if n.level > 0 {
		per = ptrSize
	}
	if count > len(body)/per {
		return nil, fmt.Errorf("%w: tree block %d claims %d items", ErrCorrupt, addr, count)
	}
	for i := 0; i < count; i++ {
		e := body[i*per:]
		k := readKey(e)
		if i > 0 && !n.keys[i-1].less(k) {
			return nil, fmt.Errorf("%w: tree block %d: keys out of order at item %d", ErrCorrupt, addr, i)
		}
		n.keys = append(n.keys, k)
		if n.level > 0 {
			n.children = append(n.children, binary.LittleEndian.Uint64(e[17:]))
			continue
		}
		off, size := binary.LittleEndian.Uint32(e[17:]), binary.LittleEndian.Uint32(e[21:])
		if uint64(off)+uint64(size) > uint64(len(body)) || int(off) < count*itemSize {
			return nil, fmt.Errorf("%w: tree block %d: item %d data [%d,+%d) outside the block", ErrCorrupt, addr, i, off, size)
		}
		n.data = append(n.data, body[off:off+size])
	}
	f.nodes.Put(addr, n, int(f.sb.nodeSize))
	return n, nil
}

// checkBlock verifies a tree block read from addr: checksum, address, filesystem and level.
func (f *FS) checkBlock(b []byte, addr uint64, level uint8) error {
	if err := verifyCsum(f.sb.csumType, b); err != nil {
		return fmt.Errorf("tree block %d: %w", addr, err)
	}
	if got := binary.LittleEndian.Uint64(b[0x30:]); got != addr {
		return fmt.Errorf("%w: tree block at %d says it is at %d", ErrCorrupt, addr, got)
	}
	if !bytes.Equal(b[0x20:0x30], f.sb.metadataUUID[:]) {
		return fmt.Errorf("%w: tree block %d belongs to another filesystem", ErrCorrupt, addr)
	}
	if b[0x64] != level {
		return fmt.Errorf("%w: tree block %d is level %d, expected %d", ErrCorrupt, addr, b[0x64], level)
	}
	return nil
}

// tree is a B-tree root.
type tree struct {
	addr  uint64
	level uint8
}

// search calls fn for every item with key >= from, in key order, until fn returns false.
func (f *FS) search(t tree, from key, fn func(k key, data []byte) (bool, error)) error {
	_, err := f.searchNode(t.addr, t.level, from, false, fn)
	return err
}

// searchFloor is search from the greatest key <= from (when there is one) instead: the item that
// covers a range starting before from.
func (f *FS) searchFloor(t tree, from key, fn func(k key, data []byte) (bool, error)) error {
	_, err := f.searchNode(t.addr, t.level, from, true, fn)
	return err
}

func (f *FS) searchNode(addr uint64, level uint8, from key, floor bool, fn func(key, []byte) (bool, error)) (bool, error) {
	n, err := f.readNode(addr, level)
	if err != nil {
		return false, err
	}
	if n.level == 0 {
		first := 0
		if floor {
			for i, k := range n.keys {
				if from.less(k) {
					break
				}
				first = i
			}
		}
		for i, k := range n.keys[first:] {
			i += first
			if k.less(from) && !(floor && i == first) {
				continue
			}
			more, err := fn(k, n.data[i])
			if err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	// The last child whose first key is <= from holds from; the ones after it follow in order.
	start := 0
	for i, k := range n.keys {
		if from.less(k) {
			break
		}
		start = i
	}
	for i := start; i < len(n.children); i++ {
		more, err := f.searchNode(n.children[i], level-1, from, floor, fn)
		if err != nil || !more {
			return false, err
		}
	}
	return true, nil
}

// items returns every item of objectid and typ in t (their offsets and data).
func (f *FS) items(t tree, objectid uint64, typ uint8) ([]key, [][]byte, error) {
	var keys []key
	var datas [][]byte
	err := f.search(t, key{objectid, typ, 0}, func(k key, d []byte) (bool, error) {
		if k.objectid != objectid || k.typ != typ {
			return false, nil
		}
		keys, datas = append(keys, k), append(datas, d)
		return true, nil
	})
	return keys, datas, err
}

// item returns the one item with exactly key k.
func (f *FS) item(t tree, k key) ([]byte, bool, error) {
	var out []byte
	found := false
	err := f.search(t, k, func(got key, d []byte) (bool, error) {
		if got == k {
			out, found = d, true
		}
		return false, nil
	})
	return out, found, err
}
