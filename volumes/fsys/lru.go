package fsys

import (
	"container/list"
	"sync"
)

// LRU is the readers' cache: mutex-guarded, least recently used first out, bounded by the summed cost
// of its values (bytes, entries: the caller's unit). Safe for concurrent use.
type LRU[K comparable, V any] struct {
	mu     sync.Mutex
	budget int
	used   int
	order  *list.List // front = most recent; values are *lruItem
	items  map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// NewLRU makes a cache holding values of at most budget summed cost.
func NewLRU[K comparable, V any](budget int) *LRU[K, V] {
	return &LRU[K, V]{budget: budget, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value cached for k and marks it recently used.
func (c *LRU[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Put stores v for k at the given cost (at least 1), evicting the least recently used values to stay
// within budget. A value costing more than the whole budget is not kept.
func (c *LRU[K, V]) Put(k K, v V, cost int) {
	cost = max(cost, 1)
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		it := e.Value.(*lruItem[K, V])
		c.used += cost - it.cost
		it.val, it.cost = v, cost
		c.order.MoveToFront(e)
	} else {
		c.items[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v, cost: cost})
		c.used += cost
	}
	for c.used > c.budget {
		e := c.order.Back()
		it := e.Value.(*lruItem[K, V])
		c.order.Remove(e)
		delete(c.items, it.key)
		c.used -= it.cost
	}
}

// Clear drops every value.
func (c *LRU[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.items)
	c.used = 0
}
