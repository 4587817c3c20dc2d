package fsys

// SecondDirNames returns the indexes of the entries of a listing that name a directory an earlier entry
// already names. The kernel shows a directory under one name, and a damaged volume that names one twice
// in a directory would otherwise double a walk at every level; readers leave such entries out of
// listings and refuse lookups through them.
//
// key is an entry's identity (inode number, MFT record, first cluster or extent). isDir tells whether an
// entry names a directory; it is asked only of entries whose key repeats in the listing, so it may be
// costly (an inode load) and a normal listing costs one map pass. The result is nil when no entry is a
// second name.
func SecondDirNames[E any, K comparable](ents []E, key func(E) K, isDir func(E) bool) map[int]bool {
	count := make(map[K]int, len(ents))
	repeated := false
	for _, e := range ents {
		k := key(e)
		count[k]++
		repeated = repeated || count[k] > 1
	}
	if !repeated {
		return nil
	}
	var second map[int]bool
	first := map[K]bool{}
	for i, e := range ents {
		k := key(e)
		if count[k] < 2 || !isDir(e) {
			continue
		}
		if first[k] {
			if second == nil {
				second = map[int]bool{}
			}
			second[i] = true
			continue
		}
		first[k] = true
	}
	return second
}
