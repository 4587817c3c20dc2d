package lru

import "testing"

func TestCache(t *testing.T) {
	c := New[int, string](10)
	c.Put(1, "a", 4)
	c.Put(2, "b", 4)
	if _, ok := c.Get(1); !ok { // 1 is now the most recent
		t.Fatal("1 missing")
	}
	c.Put(3, "c", 4) // over budget: 2, the least recent, goes
	if _, ok := c.Get(2); ok {
		t.Error("2 survived eviction")
	}
	if v, ok := c.Get(1); !ok || v != "a" {
		t.Errorf("1 = %q %v", v, ok)
	}
	c.Put(4, "huge", 11) // more than the budget: not kept, nothing evicted
	if _, ok := c.Get(4); ok {
		t.Error("an oversize value was kept")
	}
	if _, ok := c.Get(3); !ok {
		t.Error("3 evicted by a value that was not kept")
	}
	c.Put(1, "a2", 0) // cost 0 counts as 1; replacing updates in place
	if v, _ := c.Get(1); v != "a2" || c.used != 5 {
		t.Errorf("1 = %q, used %d", v, c.used)
	}
	c.Clear()
	if _, ok := c.Get(1); ok || c.used != 0 {
		t.Error("Clear left values")
	}
}

func TestKeepNewest(t *testing.T) {
	c := NewKeepNewest[int, string](10)
	c.Put(1, "a", 4)
	c.Put(2, "b", 4)
	c.Put(3, "huge", 11) // over the whole budget: kept alone, the others go
	if v, ok := c.Get(3); !ok || v != "huge" {
		t.Errorf("3 = %q %v", v, ok)
	}
	if _, ok := c.Get(1); ok {
		t.Error("1 survived an over-budget newcomer")
	}
	if _, ok := c.Get(2); ok {
		t.Error("2 survived an over-budget newcomer")
	}
	c.Put(4, "empty", 0) // costs count as given: 0 is free, and 3 is now the one to evict
	if _, ok := c.Get(3); ok || c.used != 0 {
		t.Errorf("3 kept beside a newer value, used %d", c.used)
	}
	if _, ok := c.Get(4); !ok {
		t.Error("4 missing")
	}
	z := NewKeepNewest[int, int](0) // a budget below 1 still keeps the newest value
	z.Put(1, 1, 5)
	if _, ok := z.Get(1); !ok {
		t.Error("zero budget lost the newest value")
	}
}
