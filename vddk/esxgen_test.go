package vddk

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Builders for the ESXi formats qemu-img cannot write, made from the format facts in the project's VMDK
// notes. The tests never trust them: qemu-img reads every file they make, and our reads must equal its.

// esxGrainWrite is one grain's worth of content placed by a builder: data, or a zero/unmapped marker.
type esxGrainWrite struct {
	grain int64
	data  []byte // nil: a zero entry
	kind  uint64 // seSparse only: 1 unmapped, 2 zero (with data nil)
}

// writeCOWD writes a COWD extent of sectors capacity with grain sectors per grain and the given grains.
func writeCOWD(t testing.TB, path string, sectors, grain int64, writes []esxGrainWrite) {
	t.Helper()
	gdEntries := (sectors + cowdGTEntries*grain - 1) / (cowdGTEntries * grain)
	gdSectors := (gdEntries*4 + SectorSize - 1) / SectorSize
	gtSectors := int64(cowdGTEntries * 4 / SectorSize)
	hdr := make([]byte, cowdHeaderSize)
	le := binary.LittleEndian
	le.PutUint32(hdr[0:], cowdMagic)
	le.PutUint32(hdr[4:], 1)
	le.PutUint32(hdr[8:], 3)
	le.PutUint32(hdr[12:], uint32(sectors))
	le.PutUint32(hdr[16:], uint32(grain))
	le.PutUint32(hdr[20:], 4)
	le.PutUint32(hdr[24:], uint32(gdEntries))
	file := make([]byte, (4+gdSectors)*SectorSize)
	gd := make([]uint32, gdEntries)
	next := 4 + gdSectors
	tables := map[int64][]uint32{}
	for _, w := range writes {
		ti := w.grain / cowdGTEntries
		if gd[ti] == 0 {
			gd[ti] = uint32(next)
			tables[ti] = make([]uint32, cowdGTEntries)
			file = append(file, make([]byte, gtSectors*SectorSize)...)
			next += gtSectors
		}
		if w.data == nil {
			tables[ti][w.grain%cowdGTEntries] = 1
			continue
		}
		tables[ti][w.grain%cowdGTEntries] = uint32(next)
		file = append(file, w.data...)
		next += grain
	}
	copy(file, hdr)
	for i, s := range gd {
		le.PutUint32(file[4*SectorSize+4*i:], s)
		if s != 0 {
			for j, e := range tables[int64(i)] {
				le.PutUint32(file[int64(s)*SectorSize+int64(4*j):], e)
			}
		}
	}
	le.PutUint32(file[28:], uint32(next)) // freeSector
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSESparse writes a seSparse extent of sectors capacity (4 KiB grains) with the given grains.
func writeSESparse(t testing.TB, path string, sectors int64, writes []esxGrainWrite) {
	t.Helper()
	const grain, gtSize = 8, 64
	gtEntries := int64(gtSize * SectorSize / 8)
	gdEntries := (sectors + gtEntries*grain - 1) / (gtEntries * grain)
	gdSectors := max(8, (gdEntries*8+SectorSize-1)/SectorSize)
	gtArea := max(1, gdEntries) * gtSize
	// Layout: header 0, volatile 1, journal header 2-3, journal 4-7, GD, GTs, bitmap, backmap, grains.
	gdOff := int64(8)
	gtOff := gdOff + gdSectors
	bitmapOff := gtOff + gtArea
	backmapOff := bitmapOff + 8
	grainsOff := backmapOff + 8
	var grains []byte
	gts := make([]uint64, gdEntries*gtEntries)
	var nextCluster int64
	for _, w := range writes {
		switch {
		case w.data == nil:
			gts[w.grain] = w.kind << 60
		default:
			c := uint64(nextCluster)
			gts[w.grain] = 3<<60 | (c&0xfff)<<48 | c>>12
			grains = append(grains, w.data...)
			nextCluster++
		}
	}
	file := make([]byte, grainsOff*SectorSize)
	le := binary.LittleEndian
	h := file[:SectorSize]
	for i, v := range []uint64{seSparseMagic, seSparseVersion, uint64(sectors), grain, gtSize, 0, 0, 0, 0, 0,
		1, 1, 2, 2, 4, 4, uint64(gdOff), uint64(gdSectors), uint64(gtOff), uint64(gtArea),
		uint64(bitmapOff), 8, uint64(backmapOff), 8, uint64(grainsOff), uint64(sectors)} {
		le.PutUint64(h[8*i:], v)
	}
	le.PutUint64(file[SectorSize:], seSparseVolatileMagic)
	le.PutUint64(file[SectorSize+8:], uint64(gdEntries)) // free GT number
	for i := range gdEntries {
		used := false
		for _, e := range gts[i*gtEntries : (i+1)*gtEntries] {
			used = used || e != 0
		}
		if used {
			le.PutUint64(file[gdOff*SectorSize+8*i:], 0x1000000000000000|uint64(i))
			for j, e := range gts[i*gtEntries : (i+1)*gtEntries] {
				le.PutUint64(file[(gtOff+i*gtSize)*SectorSize+int64(8*j):], e)
			}
		}
	}
	file = append(file, grains...)
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeText(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func esxDescriptor(cid, parentCID uint32, createType, hint, extent string) string {
	s := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%08x\nparentCID=%08x\ncreateType=%q\n", cid, parentCID, createType)
	if hint != "" {
		s += fmt.Sprintf("parentFileNameHint=%q\n", hint)
	}
	return s + "\n# Extent description\n" + extent + "\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n"
}

// makeESXChains builds, in dir, an ESXi vmfs flat base with a COWD child and a seSparse child, and
// returns the descriptors to open.
func makeESXChains(t testing.TB, dir string) (base, cowd, sesparse string) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 9))
	const sectors = 8192 // 4 MiB
	flat := make([]byte, sectors*SectorSize)
	for i := 0; i < len(flat); i += 4096 {
		if (i/4096)%3 != 0 {
			for j := i; j < i+512; j++ {
				flat[j] = byte(r.Uint32())
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "esx-flat.vmdk"), flat, 0o644); err != nil {
		t.Fatal(err)
	}
	base = filepath.Join(dir, "esx.vmdk")
	writeText(t, base, esxDescriptor(0x0172e8a4, CIDNone, "vmfs", "", fmt.Sprintf("RW %d VMFS \"esx-flat.vmdk\"", sectors)))

	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	// COWD child, 512-byte grains (the ESXi default) and one zeroed entry.
	cw := []esxGrainWrite{{grain: 0, data: data(512)}, {grain: 1, data: data(512)}, {grain: 9, data: data(512)},
		{grain: 5000, data: data(512)}, {grain: 8191, data: data(512)}}
	writeCOWD(t, filepath.Join(dir, "esx-000001-delta.vmdk"), sectors, 1, cw)
	cowd = filepath.Join(dir, "esx-000001.vmdk")
	writeText(t, cowd, esxDescriptor(0x8f67ca74, 0x0172e8a4, "vmfsSparse", "esx.vmdk", fmt.Sprintf("RW %d VMFSSPARSE \"esx-000001-delta.vmdk\"", sectors)))

	// seSparse child: data, zero and unmapped grains (those two read as zeros, not the parent).
	sw := []esxGrainWrite{{grain: 0, data: data(4096)}, {grain: 3, data: data(4096)}, {grain: 4, data: data(4096)},
		{grain: 7, kind: 2}, {grain: 8, kind: 1}, {grain: 1000, data: data(4096)}, {grain: 1023, data: data(4096)}}
	writeSESparse(t, filepath.Join(dir, "esx-000002-sesparse.vmdk"), sectors, sw)
	sesparse = filepath.Join(dir, "esx-000002.vmdk")
	writeText(t, sesparse, esxDescriptor(0x11223344, 0x0172e8a4, "seSparse", "esx.vmdk", fmt.Sprintf("RW %d SESPARSE \"esx-000002-sesparse.vmdk\"", sectors)))
	return base, cowd, sesparse
}
