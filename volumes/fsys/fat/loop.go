package fat

// loopGuard finds a cluster that a chain visits twice: a scan of the runs while they are few, then a
// bitmap over the volume's clusters (bounded by the volume size) once the chain is fragmented.
type loopGuard struct {
	bitmap []uint64
}

// seen reports whether cur is already part of c, and records it otherwise. It must be called before
// cur is appended to c.runs.
func (l *loopGuard) seen(c *chain, cur, maxCluster uint32) bool {
	if l.bitmap == nil && len(c.runs) > 32 {
		l.bitmap = make([]uint64, uint64(maxCluster)/64+1)
		for _, r := range c.runs {
			for k := r.first; k < r.first+r.count; k++ {
				l.bitmap[k/64] |= 1 << (k % 64)
			}
		}
	}
	if l.bitmap != nil {
		if l.bitmap[cur/64]&(1<<(cur%64)) != 0 {
			return true
		}
		l.bitmap[cur/64] |= 1 << (cur % 64)
		return false
	}
	for _, r := range c.runs {
		if cur >= r.first && cur-r.first < r.count {
			return true
		}
	}
	return false
}
