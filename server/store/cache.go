package store

import (
	"context"
	"sync"
)

// cache keeps recently read object rows in memory: a Kazoo fetch otherwise
// spends a quarter of its time in SQLite. Every change of the objects table
// goes through this process (the data directory is locked), so writers keep
// the cache exact: after their transaction they store the new row, or drop
// what they changed, under the cache's lock and bumping its sequence. A
// reader fills the cache only if no write happened since it began its read,
// so a row read before a write can never replace the row the write put.
//
// With an index other nodes write too, no row read stays true: the cache is
// off, and every read asks the index.
type cache struct {
	off bool
	mu  sync.Mutex
	seq uint64
	m   map[string]Object
}

// cacheMax bounds the cache (a few MiB); past it the cache starts over.
const cacheMax = 10_000

func (c *cache) lookup(key string) (Object, uint64, bool) {
	if c.off {
		return Object{}, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[key]
	return o, c.seq, ok
}

// fill stores o read from the index if nothing was written since seq.
func (c *cache) fill(o Object, seq uint64) {
	if c.off {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != seq {
		return
	}
	if c.m == nil || len(c.m) >= cacheMax {
		c.m = map[string]Object{}
	}
	c.m[o.Key] = o
}

// put records a row a writer committed, if the key is cached: the cache
// holds what is read, and a burst of stores must not push that out.
func (c *cache) put(o Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if _, ok := c.m[o.Key]; ok {
		c.m[o.Key] = o
	}
}

// drop forgets key, or everything if key is "".
func (c *cache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if key == "" {
		c.m = nil
		return
	}
	delete(c.m, key)
}

// get returns the object at key, from the cache or the index.
func (s *Store) get(ctx context.Context, key string) (Object, error) {
	o, seq, ok := s.cache.lookup(key)
	if ok {
		return o, nil
	}
	o, err := lookup(s.idx.Get(ctx, key))
	if err == nil {
		s.cache.fill(o, seq)
	}
	return o, err
}

// forgetAll empties the object cache and the known folders, after a change
// to a whole folder.
func (s *Store) forgetAll() {
	s.cache.drop("")
	s.dirs.Clear()
}
