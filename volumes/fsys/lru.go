package fsys

import "github.com/vmdkmount/vmdkmount/internal/lru"

// LRU is the readers' cache (see internal/lru): bounded by the summed cost of its values in the
// caller's unit; a value costing more than the whole budget is not kept. Safe for concurrent use.
type LRU[K comparable, V any] = lru.Cache[K, V]

// NewLRU makes a cache holding values of at most budget summed cost.
func NewLRU[K comparable, V any](budget int) *LRU[K, V] { return lru.New[K, V](budget) }
