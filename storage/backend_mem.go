package storage

import (
	"bytes"
	"errors"
	"sync"

	"github.com/google/btree"
)

// memBackend is the in-memory reference backend: a copy-on-write B-tree.
// Iterators read an O(1) clone, so they see a consistent snapshot.
type memBackend struct {
	mu struct {
		sync.RWMutex
		t      *btree.BTreeG[memKV]
		closed bool
	}
}

type memKV struct{ k, v []byte }

func memLess(a, b memKV) bool { return bytes.Compare(a.k, b.k) < 0 }

func newMemBackend() *memBackend {
	m := &memBackend{}
	m.mu.t = btree.NewG(32, memLess)
	return m
}

var errMemClosed = errors.New("storage: in-memory backend closed")

func (m *memBackend) write(ops []kvOp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return errMemClosed
	}
	for _, op := range ops {
		if op.del {
			m.mu.t.Delete(memKV{k: op.key})
			continue
		}
		m.mu.t.ReplaceOrInsert(memKV{k: bytes.Clone(op.key), v: bytes.Clone(op.val)})
	}
	return nil
}

func (m *memBackend) sync() error { return nil }

func (m *memBackend) get(key []byte, fn func([]byte) error) error {
	m.mu.RLock()
	if m.mu.closed {
		m.mu.RUnlock()
		return errMemClosed
	}
	kv, ok := m.mu.t.Get(memKV{k: key})
	m.mu.RUnlock()
	if !ok {
		return errNotFound
	}
	return fn(kv.v) // values are never mutated in place, only replaced
}

func (m *memBackend) iter(o iterOptions) kvIter {
	m.mu.Lock() // Clone needs exclusive access to mark nodes shared
	t := m.mu.t.Clone()
	m.mu.Unlock()
	return &memIter{t: t, o: o}
}

func (m *memBackend) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.closed = true
	return nil
}

// memIter pulls items from the B-tree in chunks.
type memIter struct {
	t    *btree.BTreeG[memKV]
	o    iterOptions
	buf  []memKV
	i    int
	done bool // no items after buf
}

const memIterChunk = 128

func (it *memIter) seek(k []byte) {
	it.fill(k, true)
}

func (it *memIter) fill(from []byte, inclusive bool) {
	it.buf = it.buf[:0]
	it.i = 0
	it.done = false
	pivot := memKV{k: from}
	visit := func(kv memKV) bool {
		if !inclusive && bytes.Equal(kv.k, from) {
			return true
		}
		if !bytes.HasPrefix(kv.k, it.o.prefix) {
			// Keys before the prefix range (after it, in reverse) are
			// skipped; reaching the far side ends the iteration.
			if c := bytes.Compare(kv.k, it.o.prefix); (c < 0) != it.o.reverse {
				return true
			}
			it.done = true
			return false
		}
		it.buf = append(it.buf, kv)
		return len(it.buf) < memIterChunk
	}
	if it.o.reverse {
		it.t.DescendLessOrEqual(pivot, visit)
	} else {
		it.t.AscendGreaterOrEqual(pivot, visit)
	}
	if len(it.buf) < memIterChunk {
		it.done = true
	}
}

func (it *memIter) valid() bool { return it.i < len(it.buf) }

func (it *memIter) next() {
	it.i++
	if it.i == len(it.buf) && !it.done {
		last := it.buf[len(it.buf)-1].k
		it.fill(last, false)
	}
}

func (it *memIter) key() []byte { return it.buf[it.i].k }

func (it *memIter) value(fn func([]byte) error) error { return fn(it.buf[it.i].v) }

func (it *memIter) close() { it.buf = nil }
