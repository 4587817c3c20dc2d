package volumes

import (
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// FuzzOpen treats the input as a one-disk set: tables, chains and signatures must give errors or
// problems, never panics or hangs, and every volume found must lie inside the disk.
func FuzzOpen(f *testing.F) {
	f.Add(testfix.Image(f, "ebrtiny.img"))
	f.Add(testfix.Image(f, "gpttiny.img"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := testfix.NewDev(b)
		s, err := Open([]Disk{d}, Options{})
		if err != nil {
			return
		}
		for _, v := range s.All() {
			for _, e := range v.Extents {
				if e.Offset < 0 || e.Size < 0 || e.Offset+e.Size > int64(len(b)) {
					t.Fatalf("%s: extent %+v outside the %d-byte disk", v.ID, e, len(b))
				}
			}
			if v.Size() > 0 {
				v.ReadAt(make([]byte, 512), v.Size()-1)
			}
		}
	})
}
