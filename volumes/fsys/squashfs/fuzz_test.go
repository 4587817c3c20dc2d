package squashfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"path"
	"testing"
)

// exercise walks a whole image the way a FUSE layer would, bounded so a hostile tree cannot run long.
func exercise(f *FS) {
	budget := 20000
	var walk func(name string, depth int)
	walk = func(name string, depth int) {
		if depth > 64 || budget <= 0 {
			return
		}
		ents, err := f.ReadDir(name)
		if err != nil {
			return
		}
		for _, e := range ents {
			budget--
			if budget <= 0 {
				return
			}
			p := path.Join(name, e.Name())
			_, _ = f.ListXattr(p)
			_, _ = f.GetXattr(p, "user.shared")
			switch {
			case e.IsDir():
				walk(p, depth+1)
			case e.Type()&fs.ModeSymlink != 0:
				_, _ = f.ReadLink(p)
				_, _ = f.Stat(p)
			case e.Type().IsRegular():
				if fl, err := f.Open(p); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
					fl.Close()
				}
			}
		}
	}
	walk(".", 0)
}

// FuzzImage mutates whole images: superblock, tables, inodes, directories and data all at once.
func FuzzImage(f *testing.F) {
	for _, name := range []string{"tiny-uncompressed.sqfs"} {
		f.Add(fixtureBytes(f, name))
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		fsys, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		exercise(fsys.(*FS))
	})
}

func FuzzSuperblock(f *testing.F) {
	f.Add(fixtureBytes(f, "tree-gzip.sqfs")[:superblockSize], int64(1<<20))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		sb, err := parseSuperblock(b, size)
		if err == nil && (sb.bytesUsed > uint64(size) || sb.blockSize != 1<<sb.blockLog) {
			t.Fatalf("accepted inconsistent superblock %+v", sb)
		}
	})
}

// synthetic builds an FS whose metadata stream is data stored as uncompressed 8 KiB metadata blocks
// starting at offset 0, for feeding raw structures to one parser.
func synthetic(data []byte) *FS {
	var img []byte
	for len(data) > 0 || len(img) == 0 {
		n := min(len(data), metaBlockSize)
		img = binary.LittleEndian.AppendUint16(img, uint16(n)|0x8000)
		img = append(img, data[:n]...)
		data = data[n:]
		if n == 0 {
			break
		}
	}
	dec, _ := newDecompressor(compGzip, 1<<17)
	return &FS{
		r: bytes.NewReader(img), end: int64(len(img)), dec: dec,
		sb:        &superblock{blockSize: 1 << 17, blockLog: 17},
		ids:       []uint32{0, 1000},
		metaCache: newBlockCache(metaCacheBytes), dataCache: newBlockCache(dataCacheBytes),
		dirs: &dirCache{max: dirCacheNames, byRef: map[uint64]*dirListing{}},
	}
}

// fixtureMetadata returns, from a fixture written by mksquashfs, the decompressed inode metadata
// starting at each entry of the root directory (at most 128 bytes each, as FuzzInode seeds) and the
// root's listing with its stored size (a FuzzDirectory seed).
func fixtureMetadata(f *testing.F, name string) (inodes [][]byte, listing []byte, size uint32) {
	img := fixtureBytes(f, name)
	v, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	fs := v.(*FS)
	from := func(block int64, offset, n int) []byte {
		e, err := fs.metaBlock(block)
		if err != nil || offset > len(e.data) {
			f.Fatalf("%s: metadata at %d+%d: %v", name, block, offset, err)
		}
		return bytes.Clone(e.data[offset:min(len(e.data), offset+n)])
	}
	root, err := fs.inodeAt(fs.sb.rootInode)
	if err != nil {
		f.Fatal(err)
	}
	ents, err := fs.parseDir(root)
	if err != nil || len(ents) == 0 {
		f.Fatalf("%s: root listing: %v", name, err)
	}
	for _, e := range ents {
		inodes = append(inodes, from(int64(fs.sb.inodeTableStart)+int64(e.ref>>16), int(e.ref&0xffff), 128))
	}
	listing = from(int64(fs.sb.dirTableStart)+int64(root.dirBlk), int(root.dirOff), int(root.size)-3)
	return inodes, listing, uint32(root.size)
}

func FuzzMetadataBlock(f *testing.F) {
	img := fixtureBytes(f, "tree-gzip.sqfs")
	sb, _ := parseSuperblock(img, int64(len(img)))
	f.Add(img[sb.inodeTableStart:min(sb.inodeTableStart+metaBlockSize+2, uint64(len(img)))], 100)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		fs := synthetic(nil)
		fs.r, fs.end = bytes.NewReader(b), int64(len(b))
		if e, err := fs.metaBlock(0); err == nil && len(e.data) > metaBlockSize {
			t.Fatalf("metadata block of %d bytes", len(e.data))
		}
		if n < 0 || n > 1<<16 {
			return
		}
		if out, _, err := fs.readMeta(metaPos{}, n); err == nil && len(out) != n {
			t.Fatalf("readMeta returned %d bytes, asked %d", len(out), n)
		}
	})
}

func FuzzInode(f *testing.F) {
	// Seeds: a basic file with two blocks, an extended directory, a symlink and a device.
	le := binary.LittleEndian
	file := le.AppendUint16(nil, typeFile)
	file = append(file, make([]byte, 14)...)
	file = le.AppendUint32(le.AppendUint32(le.AppendUint32(le.AppendUint32(file, 96), noIndex), 0), 200000)
	file = le.AppendUint32(le.AppendUint32(file, 1000), 1000|blockUncompressed)
	f.Add(file)
	dir := le.AppendUint16(nil, typeDir+extOffset)
	dir = append(dir, make([]byte, 14+24)...)
	f.Add(dir)
	link := le.AppendUint16(nil, typeSymlink)
	link = append(link, make([]byte, 14)...)
	link = append(le.AppendUint32(le.AppendUint32(link, 1), 6), "target"...)
	f.Add(link)
	dev := le.AppendUint16(nil, typeChar+extOffset)
	dev = append(dev, make([]byte, 14)...)
	f.Add(le.AppendUint32(le.AppendUint32(le.AppendUint32(dev, 1), 0x103), noIndex))
	for _, name := range []string{"tree-gzip.sqfs", "tree-xz.sqfs"} {
		inodes, _, _ := fixtureMetadata(f, name)
		for _, in := range inodes {
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := synthetic(b)
		in, err := fs.inodeAt(0)
		if err != nil {
			return
		}
		st := fs.stat(in)
		if st.Mode&0o170000 == 0 {
			t.Fatalf("inode without a type: %+v", in)
		}
		if in.typ == typeFile {
			if rf, err := fs.newRegular(in); err == nil {
				_, _ = rf.ReadAt(make([]byte, 4096), 0)
			}
		}
	})
}

func FuzzDirectory(f *testing.F) {
	le := binary.LittleEndian
	seed := le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 1), 0), 10) // 2 entries, block 0, base 10
	for i, name := range []string{"alpha", "beta"} {
		seed = le.AppendUint16(le.AppendUint16(le.AppendUint16(le.AppendUint16(seed, uint16(i*32)), uint16(i)), typeFile), uint16(len(name)-1))
		seed = append(seed, name...)
	}
	f.Add(seed, uint32(len(seed)+3))
	for _, name := range []string{"tree-gzip.sqfs", "tree-small-blocks.sqfs.gz"} {
		_, listing, size := fixtureMetadata(f, name)
		f.Add(listing, size)
	}
	f.Fuzz(func(t *testing.T, b []byte, size uint32) {
		fs := synthetic(b)
		ents, err := fs.parseDir(&inode{typ: typeDir, size: uint64(size)})
		if err != nil {
			return
		}
		for _, e := range ents {
			if !validName(e.name) {
				t.Fatalf("invalid name %q accepted", e.name)
			}
		}
	})
}

// FuzzXzChain feeds xz blocks with a filter chain (x86 branch converter, then LZMA2).
func FuzzXzChain(f *testing.F) {
	hdr := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 1, 0x69, 0x22, 0xde, 0x36}
	// Block header: 3 words, two filters (x86 without properties, LZMA2 with dictionary 128 KiB).
	block := []byte{2, 0x01, xzFilterX86, 0, xzFilterLZMA2, 1, 12, 0, 0, 0, 0, 0}
	chunk := []byte{0x01, 0x00, 0x05, 0xe8, 0x10, 0x00, 0x00, 0x00, 0x00} // stored chunk of 6 bytes
	f.Add(append(append(append(hdr, block...), chunk...), 0))
	x, err := newDecompressor(compXz, 4096)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := decompressXzChain(src, 4096)
		if err == nil && len(out) > 4096 {
			t.Fatalf("%d bytes out of a 4096-byte limit", len(out))
		}
		// The whole xz path, the library's decoder included.
		if out, err := x.decompress(src, 4096); err == nil && len(out) > 4096 {
			t.Fatalf("%d bytes out of a 4096-byte limit", len(out))
		}
		for _, unfilter := range branchDecoders {
			unfilter(bytes.Clone(src))
		}
	})
}
