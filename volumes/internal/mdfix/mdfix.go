// Package mdfix builds md RAID member images for tests: superblocks written from the format's facts
// (md_p.h's field list, checked by `mdadm --examine`) and data laid out the way md documents its
// levels, written forwards, stripe by stripe, independently of the reader's address arithmetic.
package mdfix

import (
	"encoding/binary"
	"fmt"
)

// Array describes the array to lay out.
type Array struct {
	Version   string // "0.90", "1.0", "1.1", "1.2"
	Level     int    // -1 linear, 0, 1, 4, 5, 6, 10
	Layout    uint32
	Chunk     int64 // bytes
	Members   int
	DevSize   int64 // data bytes per member (a multiple of Chunk)
	UUID      [16]byte
	Name      string
	Minor     int
	Events    uint64
	DataStart int64 // v1.1/1.2 data offset in bytes (default 1 MiB)
}

// MemberSize is the size of each member image: data area plus superblock room.
func (a Array) MemberSize() int64 {
	switch a.Version {
	case "0.90":
		return a.DevSize + 68<<10 // rounded down to 64 KiB and less 64 KiB, the superblock lands at DevSize
	case "1.0":
		return a.DevSize + 12<<10
	}
	return a.dataStart() + a.DevSize
}

func (a Array) dataStart() int64 {
	switch a.Version {
	case "0.90", "1.0":
		return 0
	}
	if a.DataStart != 0 {
		return a.DataStart
	}
	return 1 << 20
}

// ArraySize is the array size md gives this geometry.
func (a Array) ArraySize() int64 {
	n := int64(a.Members)
	switch a.Level {
	case -1, 0:
		return n * a.DevSize
	case 1:
		return a.DevSize
	case 4, 5:
		return (n - 1) * a.DevSize
	case 6:
		return (n - 2) * a.DevSize
	case 10:
		nc, fc := int64(a.Layout&0xff), int64(a.Layout>>8&0xff)
		return a.DevSize / a.Chunk / fc * n / nc * a.Chunk
	}
	panic("level")
}

// Build lays data (ArraySize bytes) out over the members and writes every member's superblock.
func (a Array) Build(data []byte) ([][]byte, error) {
	if int64(len(data)) != a.ArraySize() {
		return nil, fmt.Errorf("data is %d bytes, the array %d", len(data), a.ArraySize())
	}
	areas := make([][]byte, a.Members)
	for i := range areas {
		areas[i] = make([]byte, a.DevSize)
	}
	if err := a.layOut(data, areas); err != nil {
		return nil, err
	}
	out := make([][]byte, a.Members)
	for i := range out {
		img := make([]byte, a.MemberSize())
		copy(img[a.dataStart():], areas[i])
		if a.Version == "0.90" {
			a.super090(img, i)
		} else {
			a.super1(img, i)
		}
		out[i] = img
	}
	return out, nil
}

func (a Array) layOut(data []byte, areas [][]byte) error {
	n := a.Members
	c := int(a.Chunk)
	chunk := func(k int) []byte { return data[k*c : (k+1)*c] }
	put := func(disk, row int, b []byte) { copy(areas[disk][row*c:], b) }
	switch a.Level {
	case -1: // linear: one member after the other
		for i := range areas {
			copy(areas[i], data[int64(i)*a.DevSize:])
		}
	case 0: // stripes: chunk k on member k mod n
		for k := 0; k*c < len(data); k++ {
			put(k%n, k/n, chunk(k))
		}
	case 1:
		for i := range areas {
			copy(areas[i], data)
		}
	case 4, 5, 6:
		a.parityLayout(data, areas)
	case 10:
		return a.raid10Layout(data, areas)
	}
	return nil
}

// parityLayout writes RAID 4/5/6 stripe by stripe. Per md's documented layouts: "left" puts parity on
// the last member in stripe 0 and moves it one member left each stripe, "right" starts on the first and
// moves right; "symmetric" starts a stripe's data on the member after the parity (after Q in RAID 6)
// and wraps, "asymmetric" fills the members in order, skipping parity. RAID 4 and "parity-last" keep
// parity on the last member, "parity-first" on the first. RAID 6 keeps Q just after P (wrapping).
func (a Array) parityLayout(data []byte, areas [][]byte) {
	n := a.Members
	c := int(a.Chunk)
	par := 1
	if a.Level == 6 {
		par = 2
	}
	dataDisks := n - par
	rows := int(a.DevSize / a.Chunk)
	for s := 0; s < rows; s++ {
		var p int
		alg := int(a.Layout)
		if a.Level == 4 {
			alg = 5
		}
		switch alg {
		case 0, 2: // left
			p = n - 1 - s%n
		case 1, 3: // right
			p = s % n
		case 4:
			p = 0
		case 5:
			p = dataDisks
		}
		q := -1
		if par == 2 {
			q = (p + 1) % n
		}
		// The data members of this stripe, in chunk order.
		var order []int
		if alg == 2 || alg == 3 { // symmetric: start after the last parity member, wrap
			start := p + 1
			if q >= 0 {
				start = q + 1
			}
			for i := 0; i < dataDisks; i++ {
				order = append(order, (start+i)%n)
			}
		} else {
			for d := 0; d < n; d++ {
				if d != p && d != q {
					order = append(order, d)
				}
			}
		}
		pBuf := make([]byte, c)
		qBuf := make([]byte, c)
		for k, d := range order {
			b := data[(s*dataDisks+k)*c : (s*dataDisks+k+1)*c]
			copy(areas[d][s*c:], b)
			for i := range b {
				pBuf[i] ^= b[i]
			}
		}
		copy(areas[p][s*c:], pBuf)
		if q >= 0 {
			// Q's coefficients follow the members from the one after Q around (from member 0 when
			// Q is last), P and Q left out: g^0, g^1, …
			first := 0
			if q != n-1 {
				first = q + 1
			}
			slot := 0
			for i := 0; i < n; i++ {
				d := (first + i) % n
				if d == p || d == q {
					continue
				}
				coef := pow2(slot)
				for j, v := range areas[d][s*c : (s+1)*c] {
					qBuf[j] ^= mul(v, coef)
				}
				slot++
			}
			copy(areas[q][s*c:], qBuf)
		}
	}
}

// raid10Layout handles the three plain shapes: near (n copies of each chunk on consecutive members),
// far (a RAID 0 of the whole array in each of fc bands of the members, each band shifted one member)
// and offset (each stripe of chunks followed by fc-1 copies shifted one member per copy).
func (a Array) raid10Layout(data []byte, areas [][]byte) error {
	n := a.Members
	c := int(a.Chunk)
	nc, fc := int(a.Layout&0xff), int(a.Layout>>8&0xff)
	offset := a.Layout&(1<<16) != 0
	chunks := len(data) / c
	put := func(disk, row, k int) { copy(areas[disk][row*c:], data[k*c:(k+1)*c]) }
	switch {
	case fc == 1:
		for k := 0; k < chunks; k++ {
			for j := 0; j < nc; j++ {
				pos := k*nc + j
				put(pos%n, pos/n, k)
			}
		}
	case nc == 1 && !offset:
		used := (chunks*fc + n - 1) / n
		band := used / fc
		for k := 0; k < chunks; k++ {
			for f := 0; f < fc; f++ {
				put((k%n+f)%n, f*band+k/n, k)
			}
		}
	case nc == 1 && offset:
		for k := 0; k < chunks; k++ {
			for f := 0; f < fc; f++ {
				put((k%n+f)%n, (k/n)*fc+f, k)
			}
		}
	default:
		return fmt.Errorf("raid10 layout %#x not laid out by mdfix", a.Layout)
	}
	return nil
}

func pow2(n int) byte {
	x := byte(1)
	for i := 0; i < n; i++ {
		x = mul(x, 2)
	}
	return x
}

// mul multiplies in GF(2^8) modulo x^8+x^4+x^3+x^2+1, bit by bit.
func mul(a, b byte) byte {
	var r byte
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1d
		}
		b >>= 1
	}
	return r
}

func fold(sum uint64) uint32 { return uint32(sum&0xffffffff) + uint32(sum>>32) }

// super090 writes the 4 KiB 0.90 superblock at the 64 KiB-aligned spot 64 KiB before the end.
func (a Array) super090(img []byte, role int) {
	size := int64(len(img))
	off := size&^(64<<10-1) - 64<<10
	b := img[off : off+4096]
	w := func(i int, v uint32) { binary.LittleEndian.PutUint32(b[4*i:], v) }
	u := func(i int) uint32 { return binary.BigEndian.Uint32(a.UUID[4*i:]) }
	w(0, 0xa92b4efc)
	w(1, 0)
	w(2, 90)
	w(5, u(0))
	w(6, 1700000000)
	w(7, uint32(int32(a.Level)))
	w(8, uint32(a.DevSize/1024))
	w(9, uint32(a.Members))
	w(10, uint32(a.Members))
	w(11, uint32(a.Minor))
	w(13, u(1))
	w(14, u(2))
	w(15, u(3))
	w(32, 1700000000)
	w(33, 1) // clean
	w(34, uint32(a.Members))
	w(35, uint32(a.Members))
	w(39, uint32(a.Events))
	w(40, uint32(a.Events>>32))
	w(64, a.Layout)
	w(65, uint32(a.Chunk))
	for i := 0; i < a.Members; i++ {
		d := 128 + 32*i
		w(d, uint32(i))
		w(d+1, 9)
		w(d+2, uint32(i))
		w(d+3, uint32(i))
		w(d+4, 6) // active, in sync
	}
	copy(b[992*4:], b[(128+32*role)*4:(128+32*role+32)*4])
	var sum uint64
	for i := 0; i < 1024; i++ {
		sum += uint64(binary.LittleEndian.Uint32(b[4*i:]))
	}
	w(38, fold(sum))
}

// super1 writes a version-1 superblock: at the end (1.0: 8 KiB from it, 4 KiB aligned), at the start
// (1.1) or 4 KiB in (1.2).
func (a Array) super1(img []byte, role int) {
	sectors := int64(len(img)) / 512
	var superS int64
	switch a.Version {
	case "1.0":
		superS = (sectors - 16) &^ 7
	case "1.1":
		superS = 0
	case "1.2":
		superS = 8
	}
	b := img[superS*512 : superS*512+4096]
	le32 := func(o int, v uint32) { binary.LittleEndian.PutUint32(b[o:], v) }
	le64 := func(o int, v uint64) { binary.LittleEndian.PutUint64(b[o:], v) }
	le32(0, 0xa92b4efc)
	le32(4, 1)
	copy(b[16:32], a.UUID[:])
	copy(b[32:64], a.Name)
	le64(64, 1700000000)
	le32(72, uint32(int32(a.Level)))
	le32(76, a.Layout)
	if a.Level != 0 && a.Level != -1 {
		le64(80, uint64(a.DevSize/512))
	}
	le32(88, uint32(a.Chunk/512))
	le32(92, uint32(a.Members))
	le64(128, uint64(a.dataStart()/512))
	le64(136, uint64(a.DevSize/512))
	le64(144, uint64(superS))
	le32(160, uint32(role))
	for i := range 16 {
		b[168+i] = byte(role*16 + i + 1)
	}
	le64(192, 1700000000)
	le64(200, a.Events)
	le64(208, ^uint64(0)) // in sync
	maxDev := a.Members
	le32(220, uint32(maxDev))
	for i := 0; i < a.Members; i++ {
		binary.LittleEndian.PutUint16(b[256+2*i:], uint16(i))
	}
	var sum uint64
	for i := 0; i < 256+2*maxDev; i += 4 {
		if i+4 <= 256+2*maxDev {
			sum += uint64(binary.LittleEndian.Uint32(b[i:]))
		} else {
			sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		}
	}
	le32(216, fold(sum))
}
