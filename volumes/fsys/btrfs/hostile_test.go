package btrfs

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/crypto/blake2b"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const testNode = 4096

// memFS is an FS over an in-memory device mapped 1:1 by one SINGLE chunk.
func memFS(img []byte) *FS {
	sb := &superblock{nodeSize: testNode, sectorSize: 4096}
	cm := &chunkMap{devs: map[uint64]device{1: {bytes.NewReader(img), int64(len(img))}}}
	cm.add(chunk{logical: 0, length: uint64(len(img)), stripeLen: 65536, stripes: []stripe{{1, 0}}})
	return &FS{sb: sb, cm: cm, nodes: fsys.NewLRU[uint64, *node](1 << 20), data: fsys.NewLRU[uint64, []byte](1 << 20), subs: map[uint64]tree{},
		dirs: fsys.NewLRU[[2]uint64, *dirList](1 << 10)}
}

func putKey(b []byte, k key) {
	binary.LittleEndian.PutUint64(b, k.objectid)
	b[8] = k.typ
	binary.LittleEndian.PutUint64(b[9:], k.offset)
}

// mkNode writes a tree block at addr of img: a leaf of items (keys with data) or, with children, an
// internal node; its crc32c is set.
func mkNode(img []byte, addr uint64, level uint8, keys []key, data [][]byte, children []uint64) {
	b := img[addr : addr+testNode]
	clear(b)
	binary.LittleEndian.PutUint64(b[0x30:], addr)
	binary.LittleEndian.PutUint32(b[0x60:], uint32(len(keys)))
	b[0x64] = level
	body := b[headerSize:]
	end := len(body)
	for i, k := range keys {
		if level > 0 {
			putKey(body[i*ptrSize:], k)
			binary.LittleEndian.PutUint64(body[i*ptrSize+17:], children[i])
			continue
		}
		putKey(body[i*itemSize:], k)
		end -= len(data[i])
		copy(body[end:], data[i])
		binary.LittleEndian.PutUint32(body[i*itemSize+17:], uint32(end))
		binary.LittleEndian.PutUint32(body[i*itemSize+21:], uint32(len(data[i])))
	}
	binary.LittleEndian.PutUint32(b, crc32.Checksum(b[32:], castagnoli))
}

func wantErr(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), what) {
		t.Fatalf("error %v, want ErrCorrupt naming %q", err, what)
	}
}

func TestHostileTrees(t *testing.T) {
	img := make([]byte, 8*testNode)
	f := memFS(img)
	all := func(tr tree) error {
		return f.search(tr, key{}, func(key, []byte) (bool, error) { return true, nil })
	}
	t.Run("keys out of order", func(t *testing.T) {
		mkNode(img, testNode, 0, []key{{5, 1, 0}, {3, 1, 0}}, [][]byte{{1}, {2}}, nil)
		wantErr(t, all(tree{testNode, 0}), "out of order")
	})
	t.Run("tree loop", func(t *testing.T) {
		// An internal node naming itself as its child: the level must drop at each step.
		f.nodes.Clear()
		mkNode(img, 2*testNode, 1, []key{{1, 1, 0}}, nil, []uint64{2 * testNode})
		wantErr(t, all(tree{2 * testNode, 1}), "level")
	})
	t.Run("item data outside the block", func(t *testing.T) {
		f.nodes.Clear()
		mkNode(img, 3*testNode, 0, []key{{1, 1, 0}}, [][]byte{{1, 2, 3}}, nil)
		b := img[3*testNode:]
		binary.LittleEndian.PutUint32(b[headerSize+21:], 1<<20)
		binary.LittleEndian.PutUint32(b, crc32.Checksum(b[32:testNode], castagnoli))
		wantErr(t, all(tree{3 * testNode, 0}), "outside the block")
	})
	t.Run("checksum", func(t *testing.T) {
		f.nodes.Clear()
		mkNode(img, 4*testNode, 0, nil, nil, nil)
		img[4*testNode+100] ^= 1
		wantErr(t, all(tree{4 * testNode, 0}), "crc32c")
	})
	t.Run("item count past the block", func(t *testing.T) {
		f.nodes.Clear()
		mkNode(img, 5*testNode, 0, nil, nil, nil)
		b := img[5*testNode:]
		binary.LittleEndian.PutUint32(b[0x60:], 1<<31)
		binary.LittleEndian.PutUint32(b, crc32.Checksum(b[32:testNode], castagnoli))
		wantErr(t, all(tree{5 * testNode, 0}), "claims")
	})
	t.Run("block outside every chunk", func(t *testing.T) {
		wantErr(t, all(tree{1 << 40, 0}), "in no chunk")
	})
}

func TestHostileChunks(t *testing.T) {
	item := func(length, stripeLen uint64, n uint16, devOffset uint64) []byte {
		b := make([]byte, chunkItemSize+int(n)*stripeSize)
		binary.LittleEndian.PutUint64(b, length)
		binary.LittleEndian.PutUint64(b[16:], stripeLen)
		binary.LittleEndian.PutUint16(b[44:], n)
		for i := 0; i < int(n); i++ {
			binary.LittleEndian.PutUint64(b[chunkItemSize+i*stripeSize:], 1)
			binary.LittleEndian.PutUint64(b[chunkItemSize+i*stripeSize+8:], devOffset)
		}
		return b
	}
	if _, _, err := parseChunk(0, item(1<<20, 65536, 0, 0)); err == nil {
		t.Error("a chunk without stripes was taken")
	}
	b := item(1<<20, 65536, 2, 0)
	binary.LittleEndian.PutUint16(b[44:], 65535) // more stripes than the item holds
	wantErr(t, func() error { _, _, err := parseChunk(0, b); return err }(), "stripes")
	wantErr(t, func() error { _, _, err := parseChunk(0, item(1<<20, 3, 1, 0)); return err }(), "stripe length")
	wantErr(t, func() error { _, _, err := parseChunk(1<<63, item(1<<63, 65536, 1, 0)); return err }(), "length")
	// A chunk mapping past the end of its device reads as damage, not as zeros.
	f := memFS(make([]byte, 1<<16))
	c, _, err := parseChunk(1<<30, item(1<<20, 65536, 1, 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	f.cm.add(c)
	wantErr(t, f.cm.read(make([]byte, 10), 1<<30), "past")
}

func TestHostileExtents(t *testing.T) {
	f := memFS(make([]byte, 1<<16))
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(bytes.Repeat([]byte("x"), 5000))
	w.Close()
	// A compressed extent that inflates past the size its item gives.
	if _, err := f.decompress(compZlib, z.Bytes(), 100); err == nil || !strings.Contains(err.Error(), "inflates past") {
		t.Errorf("zlib: %v", err)
	}
	d := make([]byte, 53)
	binary.LittleEndian.PutUint64(d[8:], 1<<30) // ram 1 GiB
	d[16], d[20] = compZstd, extRegular
	binary.LittleEndian.PutUint64(d[29:], 4096)
	binary.LittleEndian.PutUint64(d[45:], 4096)
	if _, err := parseExtent(key{}, d); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a 1 GiB compressed extent was taken: %v", err)
	}
	d[17] = 1 // encrypted
	if _, err := parseExtent(key{}, d); !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("encryption: %v, want ErrUnsupported wrapping errors.ErrUnsupported (EOPNOTSUPP)", err)
	}
	if _, err := f.lzo([]byte{0xff, 0xff, 0xff, 0x7f}, 4096); !errors.Is(err, ErrCorrupt) {
		t.Errorf("lzo length past the data: %v", err)
	}
}

// FuzzNode parses arbitrary tree blocks (bytenr patched in and checksum recomputed, so the body is
// what varies) and walks them: errors, never panics or unbounded work.
func FuzzNode(f *testing.F) {
	img := make([]byte, testNode)
	mkNode(img, 0, 0, []key{{256, 1, 0}, {256, 12, 5}}, [][]byte{make([]byte, 160), []byte("abc")}, nil)
	f.Add(img)
	f.Fuzz(func(t *testing.T, b []byte) {
		img := make([]byte, 2*testNode)
		copy(img[testNode:], b)
		nb := img[testNode:]
		binary.LittleEndian.PutUint64(nb[0x30:], testNode)
		clear(nb[0x20:0x30])
		binary.LittleEndian.PutUint32(nb, crc32.Checksum(nb[32:], castagnoli))
		fs := memFS(img)
		fs.search(tree{testNode, nb[0x64] % maxLevel}, key{}, func(k key, d []byte) (bool, error) {
			parseDirItems(d, func(key, uint8, []byte, []byte) error { return nil })
			parseExtent(k, d)
			return true, nil
		})
	})
}

// FuzzChunkArray parses arbitrary system chunk arrays and reads through the chunks they map, from
// three 256 KiB devices (ids 1-3; id 4 absent, so RAID5/6 and mirrored chunks naming it read degraded),
// every way a tree block would be read.
func FuzzChunkArray(f *testing.F) {
	chunkSeed := func(typ uint64, devids ...uint64) []byte {
		b := make([]byte, 17+chunkItemSize+len(devids)*stripeSize)
		putKey(b, key{256, typeChunkItem, 0})
		binary.LittleEndian.PutUint64(b[17:], 1<<17)
		binary.LittleEndian.PutUint64(b[17+16:], 65536)
		binary.LittleEndian.PutUint64(b[17+24:], typ)
		binary.LittleEndian.PutUint16(b[17+44:], uint16(len(devids)))
		for i, id := range devids {
			binary.LittleEndian.PutUint64(b[17+chunkItemSize+i*stripeSize:], id)
		}
		return b
	}
	f.Add(chunkSeed(0, 1))
	f.Add(chunkSeed(bgRAID5, 1, 2, 4))
	f.Add(chunkSeed(bgRAID6, 4, 1, 2, 3))
	f.Add(chunkSeed(bgRAID1C3, 4, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := memFS(make([]byte, 1<<16))
		for id := uint64(1); id <= 3; id++ {
			dev := bytes.Repeat([]byte{byte(id)}, 1<<18)
			fs.cm.devs[id] = device{bytes.NewReader(dev), int64(len(dev))}
		}
		for len(b) >= 17 {
			k := readKey(b)
			c, n, err := parseChunk(k.offset, b[17:])
			if err != nil {
				return
			}
			fs.cm.add(c)
			b = b[17+n:]
			p := make([]byte, 8192)
			fs.cm.read(p, k.offset)
			for m := range fs.cm.mirrors(k.offset) {
				fs.cm.readMirror(p, k.offset, m)
			}
		}
	})
}

// TestChecksumTypes checks that each checksum type verifies a tree block and refuses it once a byte
// of the block changed, naming the checksum.
func TestChecksumTypes(t *testing.T) {
	for typ, name := range csumNames {
		b := make([]byte, testNode)
		copy(b[100:], "some tree block")
		switch typ {
		case csumCRC32C:
			binary.LittleEndian.PutUint32(b, crc32.Checksum(b[32:], castagnoli))
		case csumXXHash:
			binary.LittleEndian.PutUint64(b, xxhash.Sum64(b[32:]))
		case csumSHA256:
			s := sha256.Sum256(b[32:])
			copy(b, s[:])
		case csumBlake2:
			s := blake2b.Sum256(b[32:])
			copy(b, s[:])
		}
		if err := verifyCsum(typ, b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		b[200] ^= 1
		wantErr(t, verifyCsum(typ, b), name)
	}
	if err := verifyCsum(4, make([]byte, testNode)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("checksum type 4: %v", err)
	}
}
