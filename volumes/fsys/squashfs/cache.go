package squashfs

import (
	"container/list"
	"sync"
)

// blockCache keeps recently decompressed blocks, bounded by their total size. Safe for concurrent use.
type blockCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	order    *list.List // front = most recent; values are *cacheEntry
	byKey    map[int64]*list.Element
}

type cacheEntry struct {
	key    int64
	data   []byte
	diskSz int // bytes the block occupies on disk, header included
}

func newBlockCache(maxBytes int) *blockCache {
	return &blockCache{maxBytes: maxBytes, order: list.New(), byKey: map[int64]*list.Element{}}
}

func (c *blockCache) get(key int64) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry), true
}

func (c *blockCache) put(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[e.key]; ok || len(e.data) > c.maxBytes {
		return
	}
	c.byKey[e.key] = c.order.PushFront(e)
	c.bytes += len(e.data)
	for c.bytes > c.maxBytes {
		old := c.order.Back()
		oe := old.Value.(*cacheEntry)
		c.order.Remove(old)
		delete(c.byKey, oe.key)
		c.bytes -= len(oe.data)
	}
}

func (c *blockCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	c.byKey = map[int64]*list.Element{}
	c.bytes = 0
}
