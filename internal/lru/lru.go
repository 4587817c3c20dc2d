// Package lru is the kit's cache of immutable values: mutex-guarded, least recently used first out,
// bounded by the summed cost of its values in the caller's unit (bytes, entries). Both the disk
// formats (vddk) and the file system readers (volumes/fsys) use it, so it sits below both.
package lru

import (
	"container/list"
	"sync"
)

// Cache is safe for concurrent use; lookups are short critical sections.
type Cache[K comparable, V any] struct {
	mu         sync.Mutex
	budget     int
	used       int
	keepNewest bool       // an over-budget value stays alone instead of being refused
	order      *list.List // front = most recent; values are *item
	items      map[K]*list.Element
}

type item[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

// New makes a cache of values of at most budget summed cost. A value costing more than the whole
// budget is not kept, and a cost below 1 counts as 1.
func New[K comparable, V any](budget int) *Cache[K, V] {
	return &Cache[K, V]{budget: budget, order: list.New(), items: map[K]*list.Element{}}
}

// NewKeepNewest is New for callers that must find the value they just stored (a table read
// for the next lookup): the newest value always stays, even over budget, and costs count as given.
func NewKeepNewest[K comparable, V any](budget int) *Cache[K, V] {
	c := New[K, V](max(budget, 1))
	c.keepNewest = true
	return c
}

// Get returns the value cached for k and marks it recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*item[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Put stores v for k at the given cost, evicting the least recently used values to stay within budget.
func (c *Cache[K, V]) Put(k K, v V, cost int) {
	if !c.keepNewest {
		cost = max(cost, 1)
		if cost > c.budget {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		it := e.Value.(*item[K, V])
		c.used += cost - it.cost
		it.val, it.cost = v, cost
		c.order.MoveToFront(e)
	} else {
		c.items[k] = c.order.PushFront(&item[K, V]{key: k, val: v, cost: cost})
		c.used += cost
	}
	// The newest value fits the budget unless keepNewest let it in, so it is never the one evicted.
	for c.used > c.budget && c.order.Len() > 1 {
		e := c.order.Back()
		it := e.Value.(*item[K, V])
		c.order.Remove(e)
		delete(c.items, it.key)
		c.used -= it.cost
	}
}

// Clear drops every value.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.items)
	c.used = 0
}
