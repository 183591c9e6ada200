package store

import (
	"context"
	"fmt"

	"github.com/attachd/attachd/server/index"
)

// UpdateDir changes the WebDAV dead properties or the modification time of
// the folder at key. Folders have no sidecar, so these live in the index only;
// reindex keeps them for folders that still exist. fn returns false to leave
// the folder as it was. The root has no record and cannot be updated.
func (s *Store) UpdateDir(ctx context.Context, key string, fn func(*Dir) bool) (Dir, error) {
	s.tree.RLock()
	defer s.tree.RUnlock()
	if key == "" {
		return Dir{}, fmt.Errorf("%w: the root folder has no properties", ErrConflict)
	}
	d, err := s.StatDir(ctx, key)
	if err != nil {
		return d, err
	}
	n := d
	if !fn(&n) {
		return d, nil
	}
	n.Key = key
	if err := s.update(ctx, func(tx index.Tx) error { return tx.UpdateDir(n) }); err != nil {
		return d, fmt.Errorf("update folder %q: %w", UnescapeKey(key), err)
	}
	return n, nil
}

// WalkObjects calls fn for every object at or below the folder prefix ("" for
// all), in key order, from the index alone.
func (s *Store) WalkObjects(ctx context.Context, prefix string, fn func(Object) error) error {
	return s.idx.Walk(ctx, prefix, fn)
}

// ListLean is List for WebDAV listings: the same children, passed to fn one
// at a time, without the fields a PROPFIND never shows (blob, updated). Meta
// is left nil unless withMeta.
func (s *Store) ListLean(ctx context.Context, key string, withMeta bool, fn func(Entry) error) error {
	fields := index.ListFields
	if withMeta {
		fields = index.ListFieldsMeta
	}
	return s.idx.List(ctx, key, fields, fn)
}

// IndexWatch tells when anything was committed to the index: WebDAV caches
// collection listings until then, since clients list the same folder again
// and again and a listing read from the index stays valid until the next
// commit. It must be closed.
type IndexWatch struct{ w index.Watcher }

// NewIndexWatch returns an IndexWatch over the store's index.
func (s *Store) NewIndexWatch() *IndexWatch { return &IndexWatch{s.idx.Watch()} }

// Version returns a number that changes whenever another connection commits.
func (w *IndexWatch) Version(ctx context.Context) (int64, error) { return w.w.Version(ctx) }

// Close releases the watch's connection.
func (w *IndexWatch) Close() error { return w.w.Close() }
