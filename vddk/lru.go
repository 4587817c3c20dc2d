package vddk

import (
	"container/list"
	"sync"
)

// lru is a small mutex-guarded least-recently-used cache bounded by the total cost of its entries, as
// its cost function gives them (bytes, for the caches of tables and grains). Lookups are short critical sections; the values
// themselves are immutable once stored.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	used  int
	cost  func(V) int
	ll    *list.List
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// newSizedLRU keeps entries while their costs add up to at most max (the newest entry always stays).
func newSizedLRU[K comparable, V any](max int, cost func(V) int) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	return &lru[K, V]{max: max, cost: cost, ll: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	cost := c.cost(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		ent := e.Value.(*lruEntry[K, V])
		c.used += cost - ent.cost
		ent.val, ent.cost = v, cost
		c.ll.MoveToFront(e)
	} else {
		c.items[k] = c.ll.PushFront(&lruEntry[K, V]{k, v, cost})
		c.used += cost
	}
	for c.used > c.max && c.ll.Len() > 1 {
		last := c.ll.Back()
		ent := last.Value.(*lruEntry[K, V])
		c.ll.Remove(last)
		delete(c.items, ent.key)
		c.used -= ent.cost
	}
}
