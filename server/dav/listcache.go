package dav

import (
	"context"
	"sync"

	"github.com/attachd/attachd/server/store"
)

// maxCachedBytes bounds the listing cache (roughly: keys, metadata and
// properties plus a fixed cost per entry); past it the cache starts over.
const maxCachedBytes = 64 << 20

// listCache keeps collection listings read from the index until the index
// next changes (store.IndexWatch). Windows, Finder and davfs2 PROPFIND the
// same folder over and over; with it a repeated PROPFIND of 10 000 files
// costs no index scan at all. Any commit (a Kazoo store, a WebDAV write, a
// metadata update) empties it, so a listing is never older than the index.
type listCache struct {
	watch *store.IndexWatch

	mu      sync.Mutex
	version int64
	size    int
	lists   map[listKey][]store.Entry
	views   map[string]viewTree // by user root, then account filter
}

type listKey struct {
	key      string
	withMeta bool
}

func newListCache(st *store.Store) *listCache {
	return &listCache{watch: st.NewIndexWatch(), lists: map[listKey][]store.Entry{}, views: map[string]viewTree{}}
}

// list returns the children of the folder at key, from the cache or from
// one index listing. With withMeta the objects carry their metadata.
func (c *listCache) list(ctx context.Context, st *store.Store, key string, withMeta bool) ([]store.Entry, error) {
	v, err := c.watch.Version(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sync(v)
	es, ok := c.lists[listKey{key, withMeta}]
	if !ok && !withMeta {
		es, ok = c.lists[listKey{key, true}]
	}
	c.mu.Unlock()
	if ok {
		return es, nil
	}
	es = nil
	size := 0
	err = st.ListLean(ctx, key, withMeta, func(e store.Entry) error {
		es = append(es, e)
		size += 200 + len(e.Key) + len(e.Object.Meta) + len(e.Object.Props) + len(e.Dir.Props)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version == v && size <= maxCachedBytes {
		if c.size+size > maxCachedBytes {
			c.size, c.lists = 0, map[listKey][]store.Entry{}
		}
		c.lists[listKey{key, withMeta}] = es
		c.size += size
	}
	return es, nil
}

// sync empties the cache if the index changed since it was filled. c.mu is held.
func (c *listCache) sync(v int64) {
	if v != c.version {
		c.version, c.size = v, 0
		c.lists, c.views = map[listKey][]store.Entry{}, map[string]viewTree{}
	}
}

// view returns the @by-date tree of the objects under root (of one account,
// if account is set), from the cache or built by build. The view reads every
// object of the user's tree, so it is worth keeping until the index changes.
func (c *listCache) view(ctx context.Context, root, account string, build func() (viewTree, error)) (viewTree, error) {
	v, err := c.watch.Version(ctx)
	if err != nil {
		return nil, err
	}
	k := root + "\x00" + account
	c.mu.Lock()
	c.sync(v)
	t, ok := c.views[k]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	if t, err = build(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version == v && len(c.views) < 64 {
		c.views[k] = t
	}
	return t, nil
}
