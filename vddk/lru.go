package vddk

import "github.com/vmdkmount/vmdkmount/internal/lru"

// sizedLRU caches tables and grains bounded by their total cost as the cost function gives it
// (bytes). The newest entry always stays, so a table just read is found by the next lookup.
type sizedLRU[K comparable, V any] struct {
	c    *lru.Cache[K, V]
	cost func(V) int
}

// newSizedLRU keeps entries while their costs add up to at most max (the newest entry always stays).
func newSizedLRU[K comparable, V any](max int, cost func(V) int) *sizedLRU[K, V] {
	return &sizedLRU[K, V]{c: lru.NewKeepNewest[K, V](max), cost: cost}
}

func (c *sizedLRU[K, V]) get(k K) (V, bool) { return c.c.Get(k) }
func (c *sizedLRU[K, V]) put(k K, v V)      { c.c.Put(k, v, c.cost(v)) }
