package vddk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// tinySparse builds a small KDMV image (4 KiB grains, 128 KiB capacity) for fuzz seeds, in one of the
// variants the reader distinguishes. Seeds only: tests judge real images against qemu-img instead.
func tinySparse(variant string) []byte {
	const grain, capacity, gtes = 8, 256, 32
	le := binary.LittleEndian
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=%q\nRW %d SPARSE \"tiny.vmdk\"\nddb.adapterType = \"ide\"\n",
		map[bool]string{true: "streamOptimized", false: "monolithicSparse"}[variant == "stream" || variant == "stream-nofooter"], capacity)
	hdr := func(flags uint32, version uint32, gd uint64) []byte {
		h := make([]byte, SectorSize)
		le.PutUint32(h[0:], sparseMagic)
		le.PutUint32(h[4:], version)
		le.PutUint32(h[8:], flags)
		le.PutUint64(h[12:], capacity)
		le.PutUint64(h[20:], grain)
		le.PutUint64(h[28:], 1)
		le.PutUint64(h[36:], 1)
		le.PutUint32(h[44:], gtes)
		le.PutUint64(h[48:], 2)
		le.PutUint64(h[56:], gd)
		le.PutUint64(h[64:], 8)
		copy(h[73:], "\n \r\n")
		if flags&flagCompressed != 0 {
			le.PutUint16(h[77:], 1)
		}
		return h
	}
	grainData := func(i int) []byte {
		return bytes.Repeat([]byte{byte('a' + i)}, grain*SectorSize)
	}
	switch variant {
	case "plain", "zeroed", "v3":
		flags, version := uint32(flagNewlineCheck|flagRedundantGD), uint32(1)
		switch variant {
		case "zeroed":
			flags, version = flags|flagZeroedGrain, 2
		case "v3": // an uncompressed version 3 header (CBT-era hosted sparse); qemu opens it read-only
			version = 3
		}
		img := make([]byte, 8*SectorSize)
		copy(img, hdr(flags, version, 3))
		copy(img[SectorSize:], desc)
		for _, gdSector := range []int{2, 3} { // RGD at 2, GD at 3; both point at the same GT layout
			le.PutUint32(img[gdSector*SectorSize:], uint32(4+gdSector-2)) // GT at 4 (RGT) or 5 (GT)
		}
		img = append(img, make([]byte, 8*SectorSize)...)
		for gi, g := range []int{0, 3, 7} {
			sector := uint32(len(img) / SectorSize)
			img = append(img, grainData(gi)...)
			for _, gt := range []int{4, 5} {
				le.PutUint32(img[gt*SectorSize+4*g:], sector)
			}
		}
		if variant == "zeroed" {
			le.PutUint32(img[5*SectorSize+4*5:], 1)
		}
		return img
	default: // stream, stream-nofooter: layout A with markers
		img := make([]byte, 8*SectorSize)
		copy(img, hdr(flagNewlineCheck|flagCompressed|flagMarkers, 3, gdAtEnd))
		copy(img[SectorSize:], desc)
		gt := make([]byte, 4*SectorSize)
		for gi, g := range []int{0, 2, 31} {
			var z bytes.Buffer
			w := zlib.NewWriter(&z)
			w.Write(grainData(gi))
			w.Close()
			sector := uint32(len(img) / SectorSize)
			m := make([]byte, 12)
			le.PutUint64(m, uint64(g*grain))
			le.PutUint32(m[8:], uint32(z.Len()))
			rec := append(m, z.Bytes()...)
			rec = append(rec, make([]byte, (SectorSize-len(rec)%SectorSize)%SectorSize)...)
			img = append(img, rec...)
			le.PutUint32(gt[4*g:], sector)
		}
		marker := func(n uint64, typ uint32) []byte {
			m := make([]byte, SectorSize)
			le.PutUint64(m, n)
			le.PutUint32(m[12:], typ)
			return m
		}
		if variant == "stream-nofooter" {
			return append(img, marker(0, markerEOS)...)
		}
		img = append(img, marker(4, markerGT)...)
		gtSector := uint64(len(img) / SectorSize)
		img = append(img, gt...)
		img = append(img, marker(1, markerGD)...)
		gdSector := uint64(len(img) / SectorSize)
		gd := make([]byte, SectorSize)
		le.PutUint32(gd, uint32(gtSector))
		img = append(img, gd...)
		img = append(img, marker(1, markerFooter)...)
		img = append(img, hdr(flagNewlineCheck|flagCompressed|flagMarkers, 3, gdSector)...)
		return append(img, marker(0, markerEOS)...)
	}
}

// The tiny seeds are themselves valid images; qemu-img must read them as we do, which also proves the
// stream layout A path (footer) and the forward scan (no footer).
func TestTinySeedsMatchQemu(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"plain", "zeroed", "v3", "stream", "stream-nofooter"} {
		t.Run(v, func(t *testing.T) {
			p := filepath.Join(dir, v+".vmdk")
			if err := os.WriteFile(p, tinySparse(v), 0o644); err != nil {
				t.Fatal(err)
			}
			d, got := openAndReadAll(t, p)
			if v == "stream-nofooter" {
				// qemu cannot open a stream without footer; the grains are known: a, b, c at 0, 2, 31.
				want := make([]byte, d.Size())
				for i, g := range []int{0, 2, 31} {
					copy(want[g*4096:], bytes.Repeat([]byte{byte('a' + i)}, 4096))
				}
				if !bytes.Equal(got, want) {
					t.Fatal("forward scan read the wrong grains")
				}
				return
			}
			want, err := os.ReadFile(qemuRaw(t, p))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("differs from qemu-img")
			}
		})
	}
}
