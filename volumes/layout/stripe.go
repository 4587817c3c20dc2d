package layout

import "fmt"

// stripe is RAID-0: chunk k of the volume lies on column k mod n, row k / n.
type stripe struct {
	cols  []Dev
	chunk int64
	size  int64
}

// Stripe interleaves cols in chunks of chunk bytes into a device of size bytes. Each column must hold
// its share: ceil(size / (chunk*n)) chunks at most, and at least what size needs.
func Stripe(cols []Dev, chunk, size int64) (Dev, error) {
	n := int64(len(cols))
	if n == 0 || chunk <= 0 || size < 0 {
		return nil, fmt.Errorf("stripe: %d columns, chunk %d, size %d", n, chunk, size)
	}
	for i, c := range cols {
		if c != nil && c.Size() < need(size, chunk, n, int64(i)) {
			return nil, fmt.Errorf("stripe column %d holds %d bytes, needs %d", i, c.Size(), need(size, chunk, n, int64(i)))
		}
	}
	return &stripe{cols: cols, chunk: chunk, size: size}, nil
}

// need is how many bytes column col must hold for a striped device of size bytes.
func need(size, chunk, n, col int64) int64 {
	full := size / (chunk * n) * chunk
	rest := size % (chunk * n)
	return full + min(max(rest-col*chunk, 0), chunk)
}

func (s *stripe) Size() int64 { return s.size }

func (s *stripe) ReadAt(p []byte, off int64) (int, error) {
	q, short, err := clip(p, off, s.size)
	if err != nil {
		return 0, err
	}
	n := int64(len(s.cols))
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		k, in := pos/s.chunk, pos%s.chunk
		col, row := k%n, k/n
		m := min(int64(len(q)-done), s.chunk-in)
		if err := readFull(s.cols[col], q[done:done+int(m)], row*s.chunk+in); err != nil {
			return done, fmt.Errorf("stripe column %d: %w", col, err)
		}
		done += int(m)
	}
	return finish(done, short, nil)
}
