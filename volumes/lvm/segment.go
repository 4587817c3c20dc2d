package lvm

import (
	"fmt"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// segment maps one segment of length bytes.
func (b *vgBuilder) segment(seg *Section, length int64) (layout.Dev, []Extent, error) {
	typ := seg.String("type")
	switch typ {
	case "striped":
		return b.striped(seg, length)
	case "linear": // older metadata
		return b.striped(seg, length)
	case "zero":
		return layout.Zero(length), nil, nil
	case "mirror":
		names, pes, err := pairs(seg.Values["mirrors"])
		if err != nil {
			return nil, nil, err
		}
		return b.anyLeg(names, pes, length)
	case "raid1":
		imgs, err := b.raidImages(seg)
		if err != nil {
			return nil, nil, err
		}
		return b.anyLeg(imgs, make([]int64, len(imgs)), length)
	case "raid5", "raid5_ls", "raid0", "raid0_meta":
		return b.raidStriped(seg, typ, length)
	case "thin", "thin-pool", "cache", "cache-pool", "snapshot", "vdo", "vdo-pool", "writecache", "integrity":
		return nil, nil, fmt.Errorf("segment type %q: %w", typ, ErrUnsupported)
	}
	if strings.HasPrefix(typ, "raid") {
		return nil, nil, fmt.Errorf("RAID layout %q: %w (raid1, raid0 and left-symmetric raid5 are)", typ, ErrUnsupported)
	}
	return nil, nil, fmt.Errorf("segment type %q: %w", typ, ErrUnsupported)
}

func (b *vgBuilder) striped(seg *Section, length int64) (layout.Dev, []Extent, error) {
	names, pes, err := pairs(seg.Values["stripes"])
	if err != nil {
		return nil, nil, err
	}
	n := int64(len(names))
	if sc, ok := seg.Int("stripe_count"); ok && sc != n {
		return nil, nil, fmt.Errorf("stripe_count %d but %d stripes listed", sc, n)
	}
	if n == 1 {
		return b.area(names[0], pes[0], length, "linear")
	}
	if length%(n*b.ext) != 0 {
		return nil, nil, fmt.Errorf("%d bytes do not divide into %d stripes of whole extents", length, n)
	}
	chunk, ok := seg.Int("stripe_size")
	if !ok || chunk <= 0 || chunk*512 > b.ext {
		return nil, nil, fmt.Errorf("stripe_size %d sectors", chunk)
	}
	cols := make([]layout.Dev, n)
	var extents []Extent
	for i := range names {
		d, ext, err := b.area(names[i], pes[i], length/n, fmt.Sprintf("stripe %d", i))
		if err != nil {
			return nil, nil, err
		}
		cols[i] = d
		extents = append(extents, ext...)
	}
	d, err := layout.Stripe(cols, chunk*512, length)
	return d, extents, err
}

// raidImages lists the _rimage_N sub-LVs of a raid segment (the list alternates rmeta, rimage).
func (b *vgBuilder) raidImages(seg *Section) ([]string, error) {
	list := seg.Values["raids"].List
	if len(list) == 0 || len(list)%2 != 0 {
		return nil, fmt.Errorf("raids list of %d items", len(list))
	}
	if dc, ok := seg.Int("device_count"); ok && dc*2 != int64(len(list)) {
		return nil, fmt.Errorf("device_count %d but %d raid pairs", dc, len(list)/2)
	}
	if off, ok := seg.Int("data_offset"); ok && off != 0 {
		return nil, fmt.Errorf("data_offset %d (a reshaped RAID): %w", off, ErrUnsupported)
	}
	var imgs []string
	for i := 1; i < len(list); i += 2 {
		imgs = append(imgs, list[i].Str)
	}
	return imgs, nil
}

// anyLeg reads a mirror from its first leg that can be mapped.
func (b *vgBuilder) anyLeg(names []string, pes []int64, length int64) (layout.Dev, []Extent, error) {
	var errs []string
	for i, name := range names {
		d, ext, err := b.area(name, pes[i], length, fmt.Sprintf("mirror leg %d", i))
		if err == nil {
			return d, ext, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, nil, fmt.Errorf("no mirror leg readable: %s: %w", strings.Join(errs, "; "), layout.ErrMissing)
}

func (b *vgBuilder) raidStriped(seg *Section, typ string, length int64) (layout.Dev, []Extent, error) {
	imgs, err := b.raidImages(seg)
	if err != nil {
		return nil, nil, err
	}
	n := int64(len(imgs))
	data := n
	if strings.HasPrefix(typ, "raid5") {
		data = n - 1
	}
	if data < 1 || length%(data*b.ext) != 0 {
		return nil, nil, fmt.Errorf("%d bytes over %d data images", length, data)
	}
	chunk, ok := seg.Int("stripe_size")
	if !ok || chunk <= 0 || chunk*512 > b.ext {
		return nil, nil, fmt.Errorf("stripe_size %d sectors", chunk)
	}
	members := make([]layout.Dev, n)
	var extents []Extent
	missing := 0
	for i, name := range imgs {
		d, ext, err := b.area(name, 0, length/data, fmt.Sprintf("raid image %d", i))
		if err != nil {
			if strings.HasPrefix(typ, "raid5") && missing == 0 {
				missing++
				continue
			}
			return nil, nil, err
		}
		members[i] = d
		extents = append(extents, ext...)
	}
	if data == n {
		d, err := layout.Stripe(members, chunk*512, length)
		return d, extents, err
	}
	d, err := layout.RAID5(members, chunk*512, length)
	return d, extents, err
}
