package xfs

import (
	"container/list"
	"sync"
)

// lru is a mutex-guarded cache bounded by the summed cost of its values.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	used    int
	order   *list.List // front = most recent
	entries map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

func newLRU[K comparable, V any](maxCost int) *lru[K, V] {
	return &lru[K, V]{max: maxCost, order: list.New(), entries: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

// put stores v unless its cost alone exceeds the bound; older entries make room.
func (c *lru[K, V]) put(k K, v V, cost int) {
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		it := e.Value.(*lruItem[K, V])
		c.used += cost - it.cost
		it.val, it.cost = v, cost
		c.order.MoveToFront(e)
	} else {
		c.entries[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v, cost: cost})
		c.used += cost
	}
	for c.used > c.max {
		e := c.order.Back()
		it := e.Value.(*lruItem[K, V])
		c.order.Remove(e)
		delete(c.entries, it.key)
		c.used -= it.cost
	}
}

func (c *lru[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.entries)
	c.used = 0
}
