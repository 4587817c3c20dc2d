package layout

import (
	"fmt"
	"sort"
)

// concat joins devices end to end.
type concat struct {
	parts  []Dev
	starts []int64 // starts[i] is the offset of parts[i]; one extra entry holds the total size
}

// Concat joins parts end to end. A nil part is a missing member: reads that touch it fail with ErrMissing,
// so give its size through a Missing device instead of nil when the size is known.
func Concat(parts []Dev) Dev {
	c := &concat{parts: parts, starts: make([]int64, len(parts)+1)}
	for i, p := range parts {
		c.starts[i+1] = c.starts[i] + p.Size()
	}
	return c
}

func (c *concat) Size() int64 { return c.starts[len(c.parts)] }

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	q, short, err := clip(p, off, c.Size())
	if err != nil {
		return 0, err
	}
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		i := sort.Search(len(c.parts), func(i int) bool { return c.starts[i+1] > pos })
		in := pos - c.starts[i]
		n := min(int64(len(q)-done), c.starts[i+1]-pos)
		if err := readFull(c.parts[i], q[done:done+int(n)], in); err != nil {
			return done, fmt.Errorf("part %d: %w", i, err)
		}
		done += int(n)
	}
	return finish(done, short, nil)
}

// Missing stands for an absent member of known size: every read fails with ErrMissing.
type Missing int64

// Size implements Dev.
func (m Missing) Size() int64 { return int64(m) }

// ReadAt implements io.ReaderAt.
func (m Missing) ReadAt(p []byte, off int64) (int, error) {
	return 0, fmt.Errorf("%d bytes at %d: %w", len(p), off, ErrMissing)
}
