package hostile

import (
	"fmt"
	"sort"
)

// BigFileSize is the size of big.bin in the images testdata/hostile/make.sh builds: the suite finds the
// file's size fields by this value.
const BigFileSize = 77777

// fsPlan says where one filesystem keeps what the suite damages.
type fsPlan struct {
	// super lists the superblock spans to damage, with the step between damaged fields (1: every byte).
	super []span
	// fixSuper recomputes the superblock checksum after a change (nil: none).
	fixSuper func(im *Image)
	// setSize sets big.bin's size; it fails when the field is not found.
	setSize func(im *Image, size uint64) error
	// repoint makes directory entry name (in loopdir) point at loopdir itself (up false) or at the root.
	repoint func(im *Image, name string, up bool) error
	// bounds are structure boundaries worth cutting the image at.
	bounds []int64
	// maxSize is the largest size the format's field holds.
	maxSize uint64
	// records are the on-disk records of big.bin and loopdir, damaged field by field.
	records []record
	// extra makes cases of the format's own (nil: none).
	extra func() ([]Case, error)
}

// record is a span of one on-disk record whose fields the suite sets to extremes one at a time.
type record struct {
	what           string
	off, end, step int64
	put            func(im *Image, off int64, data []byte) // nil: Image.Put
	fix            func(im *Image)                         // recomputes the record's checksum, or nil
}

type span struct{ off, end, step int64 }

// FilesystemCases derives the hostile variants of one filesystem image made by testdata/hostile/make.sh.
// kind is the image's name there ("ext4", "xfs", "ntfs", "fat", "exfat", "iso", "squashfs", "btrfs").
func FilesystemCases(kind string, b []byte) ([]Case, error) {
	base := New(b)
	var plan fsPlan
	var err error
	switch kind {
	case "ext4":
		plan, err = ext4Plan(base)
	case "xfs":
		plan, err = xfsPlan(base)
	case "ntfs":
		plan, err = ntfsPlan(base)
	case "fat":
		plan, err = fatPlan(base)
	case "exfat":
		plan, err = exfatPlan(base)
	case "iso":
		plan, err = isoPlan(base)
	case "squashfs":
		plan, err = squashfsPlan(base)
	case "btrfs":
		plan, err = btrfsPlan(base)
	default:
		return nil, fmt.Errorf("hostile: no plan for %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("hostile: %s: %w", kind, err)
	}
	cases := []Case{one(kind+"/unchanged", base)}
	// Sizes: the largest the field holds and 2^63 where it holds that many bits.
	sizes := []uint64{plan.maxSize}
	if plan.maxSize == 1<<63-1 {
		sizes = append(sizes, 1<<63, ^uint64(0))
	} else {
		sizes = append(sizes, plan.maxSize/2+1)
	}
	for _, s := range sizes {
		im := base.Clone()
		if err := plan.setSize(im, s); err != nil {
			return nil, fmt.Errorf("hostile: %s: big.bin size: %w", kind, err)
		}
		c := one(fmt.Sprintf("%s/big.bin-size=%#x", kind, s), im)
		c.BigSize = true
		cases = append(cases, c)
	}
	// Directory loops: an entry naming its own directory, one naming the root, and both at once.
	loops := []struct {
		name string
		set  [][2]any
	}{
		{"loopdir/selfref->loopdir", [][2]any{{"selfref", false}}},
		{"loopdir/upref->root", [][2]any{{"upref", true}}},
		{"loopdir/both-loops", [][2]any{{"selfref", false}, {"upref", true}}},
		{"loopdir/selfref->root", [][2]any{{"selfref", true}}},
	}
	for _, l := range loops {
		im := base.Clone()
		for _, s := range l.set {
			if err := plan.repoint(im, s[0].(string), s[1].(bool)); err != nil {
				return nil, fmt.Errorf("hostile: %s: %s: %w", kind, l.name, err)
			}
		}
		cases = append(cases, one(kind+"/"+l.name, im))
	}
	// Superblock fields at extremes (with the checksum made right again, so the value reaches the parser).
	for _, sp := range plan.super {
		for off := sp.off; off < sp.end; off += sp.step {
			width := int(min(sp.step, 4))
			orig := base.Bytes(off, width)
			for _, v := range extremes(orig) {
				im := base.Clone()
				im.Put(off, v)
				if plan.fixSuper != nil {
					plan.fixSuper(im)
				}
				cases = append(cases, one(fmt.Sprintf("%s/super@%d=%x", kind, off, v), im))
			}
		}
	}
	// Fields of big.bin's and loopdir's records at extremes.
	for _, r := range plan.records {
		if r.end <= r.off {
			return nil, fmt.Errorf("hostile: %s: %s not found", kind, r.what)
		}
		for off := r.off; off < r.end; off += r.step {
			orig := base.Bytes(off, int(r.step))
			for _, v := range extremes(orig) {
				im := base.Clone()
				if r.put != nil {
					r.put(im, off, v)
				} else {
					im.Put(off, v)
				}
				if r.fix != nil {
					r.fix(im)
				}
				cases = append(cases, one(fmt.Sprintf("%s/%s+%d=%x", kind, r.what, off-r.off, v), im))
			}
		}
	}
	// Truncations: every 512 bytes of the first 8 KiB, each power of two, and the plan's boundaries.
	cuts := map[int64]bool{int64(len(b)) - 1: true, int64(len(b)) / 2: true}
	for c := int64(0); c < min(8192, int64(len(b))); c += 512 {
		cuts[c] = true
	}
	for c := int64(1024); c < int64(len(b)); c *= 2 {
		cuts[c] = true
	}
	for _, bd := range plan.bounds {
		for _, d := range []int64{-1, 0, 1, 512} {
			if c := bd + d; c > 0 && c < int64(len(b)) {
				cuts[c] = true
			}
		}
	}
	for _, c := range sortedKeys(cuts) {
		cases = append(cases, one(fmt.Sprintf("%s/truncate@%d", kind, c), base.Truncated(c)))
	}
	if plan.extra != nil {
		extra, err := plan.extra()
		if err != nil {
			return nil, fmt.Errorf("hostile: %s: %w", kind, err)
		}
		cases = append(cases, extra...)
	}
	return cases, nil
}

// extremes are the hostile values for a field whose bytes are orig: zero, all ones, and the top bit of
// the field flipped in each byte order.
func extremes(orig []byte) [][]byte {
	zero := make([]byte, len(orig))
	ones := make([]byte, len(orig))
	for i := range ones {
		ones[i] = 0xff
	}
	out := [][]byte{zero, ones}
	hiLE := append([]byte(nil), orig...)
	hiLE[len(hiLE)-1] ^= 0x80
	out = append(out, hiLE)
	if len(orig) > 1 {
		hiBE := append([]byte(nil), orig...)
		hiBE[0] ^= 0x80
		out = append(out, hiBE)
	}
	var uniq [][]byte
	for _, v := range out {
		if string(v) == string(orig) {
			continue
		}
		dup := false
		for _, u := range uniq {
			dup = dup || string(u) == string(v)
		}
		if !dup {
			uniq = append(uniq, v)
		}
	}
	return uniq
}

func sortedKeys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// all returns the whole base image, for searches.
func (im *Image) all() []byte { return im.base[:im.size] }

// atLeastOne fails when offs is empty: the fixture no longer holds what the plan looks for.
func atLeastOne(what string, offs []int64) error {
	if len(offs) == 0 {
		return fmt.Errorf("%s not found", what)
	}
	return nil
}
