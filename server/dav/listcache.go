package dav

import (
	"context"
	"sync"
	"time"

	"github.com/attachd/attachd/server/store"
)

// maxCachedBytes bounds the listing cache (roughly: keys, metadata and
// properties plus a fixed cost per entry); past it the cache starts over.
const maxCachedBytes = 64 << 20

// maxListedBytes bounds the dead properties and metadata a listing keeps of
// one entry. A bigger entry is kept without them, marked for reload, and read
// again on its own while the answer is written (listEntry.load), so a listing
// costs memory for its number of entries, not for what clients stored in
// them: one object with 36 MB of properties, listed by 16 PROPFINDs at once,
// took 2.45 GB. Typical Kazoo metadata (1–3 KB) stays in the listing.
const maxListedBytes = 8 << 10

// listIdle is how long a listing nobody asks for is kept, at most: clients
// list a folder in bursts (an Explorer window, a Finder refresh), and a
// listing of 10 000 objects holds megabytes.
const listIdle = 30 * time.Second

// listCache keeps collection listings read from the index until the index
// next changes (store.IndexWatch). Windows, Finder and davfs2 PROPFIND the
// same folder over and over; with it a repeated PROPFIND of 10 000 files
// costs no index scan at all. Any commit (a Kazoo store, a WebDAV write, a
// metadata update) empties it, so a listing is never older than the index.
//
// Listings are read whole before the answer is written rather than streamed
// from the index: the index has few read connections, and a slow client
// would hold one for as long as it takes to read the answer.
type listCache struct {
	watch *store.IndexWatch
	// maxRawProps is the largest stored dead-property JSON shown
	// (Handler.maxRawProps); bigger ones are left out of listings.
	maxRawProps int

	mu      sync.Mutex
	version int64
	size    int
	used    time.Time // when a listing or view was last asked for
	lists   map[listKey][]listEntry
	calls   map[listKey]*listCall // listings being read
	views   map[string]viewTree   // by user root, then account filter
}

type listKey struct {
	key      string
	withMeta bool
}

// listEntry is one child in a listing. With reload set, its dead properties
// and metadata were left out (maxListedBytes).
type listEntry struct {
	store.Entry
	reload bool
}

// listCall is one index listing being read; requests that want the same
// listing meanwhile wait for it rather than each reading a copy.
type listCall struct {
	version int64
	done    chan struct{}
	es      []listEntry
	err     error
}

func newListCache(st *store.Store, maxRawProps int) *listCache {
	return &listCache{watch: st.NewIndexWatch(), maxRawProps: maxRawProps, lists: map[listKey][]listEntry{},
		calls: map[listKey]*listCall{}, views: map[string]viewTree{}}
}

// list returns the children of the folder at key, from the cache or from
// one index listing. With withMeta the objects carry their metadata. The
// entries are shared: callers must not change them.
func (c *listCache) list(ctx context.Context, st *store.Store, key string, withMeta bool) ([]listEntry, error) {
	v, err := c.watch.Version(ctx)
	if err != nil {
		return nil, err
	}
	lk := listKey{key, withMeta}
	c.mu.Lock()
	c.sync(v)
	c.used = time.Now()
	es, ok := c.lists[lk]
	if !ok && !withMeta {
		es, ok = c.lists[listKey{key, true}]
	}
	if ok {
		c.mu.Unlock()
		return es, nil
	}
	if call := c.calls[lk]; call != nil && call.version == v {
		c.mu.Unlock()
		<-call.done
		return call.es, call.err
	}
	call := &listCall{version: v, done: make(chan struct{})}
	c.calls[lk] = call
	c.mu.Unlock()

	size := 0
	call.err = st.ListLean(ctx, key, withMeta, func(e store.Entry) error {
		le := listEntry{Entry: e}
		if len(e.Object.Props) > c.maxRawProps || len(e.Dir.Props) > c.maxRawProps {
			// Stored before the limits: never shown (propCtx.deadProps),
			// so not kept nor read again either.
			le.Object.Props, le.Dir.Props = nil, nil
		}
		if len(le.Object.Props)+len(le.Object.Meta)+len(le.Dir.Props) > maxListedBytes {
			le.reload = true
			le.Object.Props, le.Object.Meta, le.Dir.Props = nil, nil, nil
		}
		call.es = append(call.es, le)
		size += 200 + len(le.Key) + len(le.Object.Meta) + len(le.Object.Props) + len(le.Dir.Props)
		return nil
	})
	if call.err != nil {
		call.es = nil
	}
	c.mu.Lock()
	if c.calls[lk] == call {
		delete(c.calls, lk)
	}
	if call.err == nil && c.version == v && size <= maxCachedBytes {
		if c.size+size > maxCachedBytes {
			c.size, c.lists = 0, map[listKey][]listEntry{}
		}
		c.lists[lk] = call.es
		c.size += size
	}
	c.mu.Unlock()
	close(call.done)
	return call.es, call.err
}

// load returns the entry whole: as listed, or for one marked reload, read
// again from the index. An entry removed since it was listed is
// store.ErrNotFound.
func (e *listEntry) load(ctx context.Context, st *store.Store) (store.Entry, error) {
	if !e.reload {
		return e.Entry, nil
	}
	out := e.Entry
	var err error
	if e.IsDir {
		out.Dir, err = st.StatDir(ctx, e.Key)
	} else {
		out.Object, err = st.Stat(ctx, e.Key)
	}
	return out, err
}

// sync empties the cache if the index changed since it was filled. c.mu is held.
func (c *listCache) sync(v int64) {
	if v != c.version {
		c.version = v
		c.empty()
	}
}

// empty drops every listing and view. c.mu is held.
func (c *listCache) empty() {
	c.size = 0
	c.lists, c.views = map[listKey][]listEntry{}, map[string]viewTree{}
}

// trim drops the listings now if the index has changed since they were
// read, rather than at the next listing (which may be hours away), and drops
// them too if none was asked for in listIdle.
func (c *listCache) trim(ctx context.Context, now time.Time) {
	v, err := c.watch.Version(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil || now.Sub(c.used) >= listIdle:
		c.empty()
	default:
		c.sync(v)
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
	c.used = time.Now()
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
