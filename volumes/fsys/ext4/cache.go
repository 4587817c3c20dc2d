package ext4

import (
	"container/list"
	"sync"
)

// lru is a bounded cache split into shards, so concurrent readers rarely wait on one another.
// Each entry has a cost (1 for an inode, its entry count for a directory); a shard evicts its least
// recently used entries once its total cost passes its share of the budget.
type lru[V any] struct {
	shards [16]lruShard[V]
}

type lruShard[V any] struct {
	mu     sync.Mutex
	budget int
	cost   int
	order  *list.List // front = most recent; values are *lruItem[V]
	items  map[uint32]*list.Element
}

type lruItem[V any] struct {
	key  uint32
	val  V
	cost int
}

func newLRU[V any](budget int) *lru[V] {
	c := &lru[V]{}
	for i := range c.shards {
		c.shards[i] = lruShard[V]{budget: max(budget/len(c.shards), 1), order: list.New(), items: map[uint32]*list.Element{}}
	}
	return c
}

func (c *lru[V]) shard(key uint32) *lruShard[V] { return &c.shards[key%uint32(len(c.shards))] }

// tooBig reports whether an entry of this cost is more than one shard keeps beside others.
func (c *lru[V]) tooBig(cost int64) bool { return cost > int64(c.shards[0].budget) }

func (c *lru[V]) get(key uint32) (V, bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		s.order.MoveToFront(e)
		return e.Value.(*lruItem[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(key uint32, val V, cost int) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		it := e.Value.(*lruItem[V])
		s.cost += cost - it.cost
		it.val, it.cost = val, cost
		s.order.MoveToFront(e)
	} else {
		s.items[key] = s.order.PushFront(&lruItem[V]{key: key, val: val, cost: cost})
		s.cost += cost
	}
	for s.cost > s.budget && s.order.Len() > 1 {
		e := s.order.Back()
		it := e.Value.(*lruItem[V])
		s.order.Remove(e)
		delete(s.items, it.key)
		s.cost -= it.cost
	}
}

func (c *lru[V]) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.order.Init()
		s.items = map[uint32]*list.Element{}
		s.cost = 0
		s.mu.Unlock()
	}
}
