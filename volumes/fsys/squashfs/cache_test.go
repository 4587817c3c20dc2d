package squashfs

import "testing"

// TestCachesStayBounded fills both caches far past their budgets.
func TestCachesStayBounded(t *testing.T) {
	c := newBlockCache(10 << 10)
	for i := range 100 {
		c.put(&cacheEntry{key: int64(i), data: make([]byte, 1<<10)})
	}
	if c.bytes > 10<<10 || len(c.byKey) != 10 {
		t.Fatalf("block cache holds %d bytes in %d blocks", c.bytes, len(c.byKey))
	}
	if _, ok := c.get(99); !ok {
		t.Fatal("most recent block evicted")
	}
	if _, ok := c.get(0); ok {
		t.Fatal("oldest block kept")
	}
	d := &dirCache{max: 50, byRef: map[uint64]*dirListing{}}
	for i := range 1000 {
		d.put(uint64(i), &dirListing{}) // empty directories count too
	}
	if d.total > 50 || len(d.byRef) > 50 {
		t.Fatalf("directory cache holds %d listings (total %d)", len(d.byRef), d.total)
	}
}
