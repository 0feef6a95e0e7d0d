package aggregate

// dirtySet records which bar slots changed since the last drain: a bitset
// for O(1) dedup plus the list of set indices so a drain costs the number of
// dirty slots, not the number of slots. It is the only place dirty state
// lives; the Core keeps no per-bar flag of its own.
//
// INVARIANT: i is in list exactly once iff bit i is set, except for indices
// unmarked by clear, which stay in list with their bit unset and are skipped
// by take.
type dirtySet struct {
	bits []uint64
	list []int32
}

// grow makes room for n slots. Growing allocates; it happens only when
// symbols are added beyond the previous high-water mark.
func (d *dirtySet) grow(n int) {
	words := (n + 63) / 64
	for len(d.bits) < words {
		d.bits = append(d.bits, 0)
	}
	d.list = reserve(d.list, n)
}

// mark records slot i as dirty.
func (d *dirtySet) mark(i int) {
	w, m := i>>6, uint64(1)<<(uint(i)&63)
	if d.bits[w]&m == 0 {
		d.bits[w] |= m
		d.list = append(d.list, int32(i))
	}
}

// clear unmarks slot i (used when a symbol is removed).
func (d *dirtySet) clear(i int) {
	d.bits[i>>6] &^= uint64(1) << (uint(i) & 63)
}

// len returns an upper bound of the number of dirty slots.
func (d *dirtySet) len() int { return len(d.list) }

// take appends the dirty slots, in the order they were first marked, to
// dst and resets the set.
func (d *dirtySet) take(dst []int32) []int32 {
	for _, i := range d.list {
		w, m := i>>6, uint64(1)<<(uint(i)&63)
		if d.bits[w]&m != 0 {
			d.bits[w] &^= m
			dst = append(dst, i)
		}
	}
	d.list = d.list[:0]
	return dst
}
