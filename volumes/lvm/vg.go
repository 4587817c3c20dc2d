package lvm

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// ErrUnsupported marks segment types this reader does not map (thin, cache, snapshot, …).
var ErrUnsupported = errors.New("not supported")

// Extent is a piece of a logical volume on one PV.
type Extent struct {
	PV     int   // index into the PVs given to Assemble
	Offset int64 // bytes from the PV start
	Size   int64
	Role   string
}

// LV is a visible logical volume.
type LV struct {
	Name     string
	UUID     string
	Segments []string
	Size     int64
	Dev      layout.Dev // nil when Err is set
	Err      error      // why the LV cannot be read
	Extents  []Extent
}

// VG is an assembled volume group.
type VG struct {
	Name       string
	UUID       string
	Seqno      int64
	ExtentSize int64 // bytes
	LVs        []*LV
	MissingPVs []string // PV ids named in the metadata but not found
	PVs        []string // PV ids named in the metadata and found
}

// Assemble groups PVs into volume groups using the newest metadata copy (highest seqno) of each
// group, and maps every visible logical volume. Problems lists stale copies and PVs that were named by
// no metadata.
func Assemble(pvs []*PV) ([]*VG, []string) {
	var problems []string
	best := map[string]*Copy{}
	var order []string
	for _, pv := range pvs {
		problems = append(problems, pv.Problems...)
		for i := range pv.Copies {
			c := &pv.Copies[i]
			cur, ok := best[c.VGID]
			if !ok {
				order = append(order, c.VGID)
			}
			if !ok || c.Seqno > cur.Seqno {
				best[c.VGID] = c
			}
		}
	}
	byUUID := map[string]int{}
	for i, pv := range pvs {
		byUUID[pv.UUID] = i
	}
	var vgs []*VG
	for _, id := range order {
		c := best[id]
		for _, pv := range pvs {
			for _, o := range pv.Copies {
				if o.VGID == id && o.Seqno != c.Seqno {
					problems = append(problems, fmt.Sprintf("VG %s: PV %s holds stale metadata (seqno %d, newest %d)", c.VGName, pv.UUID, o.Seqno, c.Seqno))
				}
			}
		}
		vg, err := build(c, pvs, byUUID)
		if err != nil {
			problems = append(problems, fmt.Sprintf("VG %s: %v", c.VGName, err))
			continue
		}
		vgs = append(vgs, vg)
	}
	return vgs, problems
}

// vgBuilder maps LVs of one VG, memoising sub-LVs (mirror legs, raid images).
type vgBuilder struct {
	vg       *VG
	sec      *Section
	ext      int64 // extent size in bytes
	pvs      map[string]pvRef
	lvs      map[string]*Section
	built    map[string]*built
	building map[string]bool
}

type pvRef struct {
	index   int // into Assemble's pvs; -1 when missing
	dev     layout.Dev
	peStart int64 // bytes
}

type built struct {
	dev     layout.Dev
	extents []Extent
	err     error
}

const maxExtentSize = 1 << 40

func build(c *Copy, pvs []*PV, byUUID map[string]int) (*VG, error) {
	sec := c.Root.Child(c.VGName)
	vg := &VG{Name: c.VGName, UUID: c.VGID, Seqno: c.Seqno}
	es, ok := sec.Int("extent_size")
	if !ok || es <= 0 || es*512 > maxExtentSize {
		return nil, fmt.Errorf("extent size %d sectors", es)
	}
	b := &vgBuilder{vg: vg, sec: sec, ext: es * 512, pvs: map[string]pvRef{}, lvs: map[string]*Section{},
		built: map[string]*built{}, building: map[string]bool{}}
	vg.ExtentSize = b.ext
	if p := sec.Child("physical_volumes"); p != nil {
		for _, s := range p.Children {
			id := s.String("id")
			i, ok := byUUID[id]
			pe, _ := s.Int("pe_start")
			if !ok || slices.Contains(s.Strings("flags"), "MISSING") {
				vg.MissingPVs = append(vg.MissingPVs, id)
				b.pvs[s.Name] = pvRef{index: -1}
				continue
			}
			if pe < 0 || pe*512 > pvs[i].dev.Size() {
				return nil, fmt.Errorf("PV %s: pe_start %d outside the device", s.Name, pe)
			}
			b.pvs[s.Name] = pvRef{index: i, dev: pvs[i].dev, peStart: pe * 512}
			vg.PVs = append(vg.PVs, id)
		}
	}
	if l := sec.Child("logical_volumes"); l != nil {
		for _, s := range l.Children {
			b.lvs[s.Name] = s
		}
		for _, s := range l.Children {
			if !slices.Contains(s.Strings("status"), "VISIBLE") {
				continue
			}
			lv := &LV{Name: s.Name, UUID: s.String("id")}
			for _, seg := range segments(s) {
				lv.Segments = append(lv.Segments, seg.String("type"))
			}
			r := b.lv(s.Name)
			lv.Dev, lv.Err, lv.Extents = r.dev, r.err, r.extents
			if r.dev != nil {
				lv.Size = r.dev.Size()
			} else {
				lv.Size = b.nominalSize(s)
			}
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return vg, nil
}

// segments returns an LV's segment sections ordered by start extent.
func segments(lv *Section) []*Section {
	var segs []*Section
	for _, c := range lv.Children {
		if strings.HasPrefix(c.Name, "segment") {
			segs = append(segs, c)
		}
	}
	sort.SliceStable(segs, func(i, j int) bool {
		a, _ := segs[i].Int("start_extent")
		b, _ := segs[j].Int("start_extent")
		return a < b
	})
	return segs
}

func (b *vgBuilder) nominalSize(lv *Section) int64 {
	var n int64
	for _, s := range segments(lv) {
		c, _ := s.Int("extent_count")
		if c > 0 && c < maxExtentSize/b.ext {
			n += c * b.ext
		}
	}
	return n
}

// lv maps the LV called name (visible or a sub-LV), once.
func (b *vgBuilder) lv(name string) *built {
	if r, ok := b.built[name]; ok {
		return r
	}
	if b.building[name] {
		return &built{err: fmt.Errorf("LV %s refers to itself", name)}
	}
	b.building[name] = true
	r := b.mapLV(name)
	delete(b.building, name)
	b.built[name] = r
	return r
}

func (b *vgBuilder) mapLV(name string) *built {
	s, ok := b.lvs[name]
	if !ok {
		return &built{err: fmt.Errorf("LV %s is not in the metadata", name)}
	}
	segs := segments(s)
	if len(segs) == 0 {
		return &built{err: fmt.Errorf("LV %s has no segments", name)}
	}
	var parts []layout.Dev
	var extents []Extent
	var next int64
	for _, seg := range segs {
		start, _ := seg.Int("start_extent")
		count, _ := seg.Int("extent_count")
		if start != next {
			return &built{err: fmt.Errorf("LV %s: segment %s starts at extent %d, expected %d", name, seg.Name, start, next)}
		}
		if count <= 0 || count > maxExtentSize/b.ext {
			return &built{err: fmt.Errorf("LV %s: segment %s has %d extents", name, seg.Name, count)}
		}
		next += count
		dev, ext, err := b.segment(seg, count*b.ext)
		if err != nil {
			return &built{err: fmt.Errorf("LV %s: segment %s: %w", name, seg.Name, err)}
		}
		parts = append(parts, dev)
		extents = append(extents, ext...)
	}
	if len(parts) == 1 {
		return &built{dev: parts[0], extents: extents}
	}
	return &built{dev: layout.Concat(parts), extents: extents}
}

// area maps `count` bytes starting at extent pe of a PV (or of another LV) named ref.
func (b *vgBuilder) area(ref string, pe, length int64, role string) (layout.Dev, []Extent, error) {
	if pe < 0 || pe > maxExtentSize/b.ext {
		return nil, nil, fmt.Errorf("extent %d of %s out of range", pe, ref)
	}
	if p, ok := b.pvs[ref]; ok {
		if p.index < 0 {
			return nil, nil, fmt.Errorf("PV %s is missing: %w", ref, layout.ErrMissing)
		}
		off := p.peStart + pe*b.ext
		d, err := layout.Slice(p.dev, off, length)
		if err != nil {
			return nil, nil, fmt.Errorf("PV %s: %w", ref, err)
		}
		return d, []Extent{{PV: p.index, Offset: off, Size: length, Role: role}}, nil
	}
	if _, ok := b.lvs[ref]; ok {
		r := b.lv(ref)
		if r.err != nil {
			return nil, nil, r.err
		}
		d, err := layout.Slice(r.dev, pe*b.ext, length)
		if err != nil {
			return nil, nil, fmt.Errorf("LV %s: %w", ref, err)
		}
		return d, r.extents, nil
	}
	return nil, nil, fmt.Errorf("area %q names neither a PV nor an LV", ref)
}

// pairs reads a ["name", extent, …] list.
func pairs(v Value) ([]string, []int64, error) {
	if len(v.List)%2 != 0 || len(v.List) == 0 {
		return nil, nil, fmt.Errorf("area list of %d items", len(v.List))
	}
	var names []string
	var pes []int64
	for i := 0; i < len(v.List); i += 2 {
		if v.List[i].IsInt || v.List[i].IsList || !v.List[i+1].IsInt {
			return nil, nil, errors.New("area list is not name, extent pairs")
		}
		names = append(names, v.List[i].Str)
		pes = append(pes, v.List[i+1].Int)
	}
	return names, pes, nil
}
