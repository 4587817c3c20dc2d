package layout

import (
	"crypto/subtle"
	"fmt"
)

// raid5 is a left-symmetric RAID-5 set (the MD default, LDM's and LVM's raid5): in row r of n members
// parity sits on member (n-1) - r mod n and data chunk k of the row on member (parity+1+k) mod n.
type raid5 struct {
	members []Dev // nil = missing; at most one
	chunk   int64
	size    int64
}

// RAID5 builds a left-symmetric RAID-5 device of size bytes from members (nil for a missing one; one
// missing member is rebuilt from parity, two make the set unreadable).
func RAID5(members []Dev, chunk, size int64) (Dev, error) {
	n := int64(len(members))
	if n < 3 || chunk <= 0 || size < 0 {
		return nil, fmt.Errorf("raid5: %d members, chunk %d, size %d", n, chunk, size)
	}
	missing := 0
	rows := (size + chunk*(n-1) - 1) / (chunk * (n - 1))
	for i, m := range members {
		if m == nil {
			missing++
			continue
		}
		if m.Size() < rows*chunk {
			return nil, fmt.Errorf("raid5 member %d holds %d bytes, needs %d", i, m.Size(), rows*chunk)
		}
	}
	if missing > 1 {
		return nil, fmt.Errorf("raid5: %d of %d members missing: %w", missing, n, ErrMissing)
	}
	return &raid5{members: members, chunk: chunk, size: size}, nil
}

func (r *raid5) Size() int64 { return r.size }

func (r *raid5) ReadAt(p []byte, off int64) (int, error) {
	q, short, err := clip(p, off, r.size)
	if err != nil {
		return 0, err
	}
	n := int64(len(r.members))
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		c, in := pos/r.chunk, pos%r.chunk
		row, k := c/(n-1), c%(n-1)
		parity := (n - 1) - row%n
		member := (parity + 1 + k) % n
		m := min(int64(len(q)-done), r.chunk-in)
		buf := q[done : done+int(m)]
		at := row*r.chunk + in
		if r.members[member] != nil {
			if err := readFull(r.members[member], buf, at); err != nil {
				return done, fmt.Errorf("raid5 member %d: %w", member, err)
			}
		} else if err := r.rebuild(buf, at, member); err != nil {
			return done, err
		}
		done += int(m)
	}
	return finish(done, short, nil)
}

// rebuild recomputes the missing member's bytes as the XOR of all the others (data and parity).
func (r *raid5) rebuild(buf []byte, at int64, skip int64) error {
	clear(buf)
	tmp := make([]byte, len(buf))
	for i, d := range r.members {
		if int64(i) == skip {
			continue
		}
		if err := readFull(d, tmp, at); err != nil {
			return fmt.Errorf("raid5 rebuild from member %d: %w", i, err)
		}
		subtle.XORBytes(buf, buf, tmp)
	}
	return nil
}
