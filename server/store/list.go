package store

import (
	"context"

	"github.com/attachd/attachd/server/index"
)

type (
	// Entry is one child of a folder.
	Entry = index.Entry
	// Dir is a folder: explicit (made by MKCOL) or implied by the keys below it.
	Dir = index.Dir
)

// StatDir returns the folder at key; "" is the root and always exists.
func (s *Store) StatDir(ctx context.Context, key string) (Dir, error) {
	if key == "" {
		return Dir{}, nil
	}
	return lookup(s.idx.Dir(ctx, key))
}

// List returns the children of the folder at key, folders first, each group
// in key order. It reads the index only: no file is opened.
func (s *Store) List(ctx context.Context, key string) ([]Entry, error) {
	var out []Entry
	err := s.idx.List(ctx, key, index.AllFields, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, readErr(err)
}

// WalkObjects calls fn for every object at or below the folder prefix ("" for
// all), in key order, from the index alone.
func (s *Store) WalkObjects(ctx context.Context, prefix string, fn func(Object) error) error {
	return readErr(s.idx.Walk(ctx, prefix, fn))
}

// ListLean is List for WebDAV listings: the same children, passed to fn one
// at a time, without the fields a PROPFIND never shows (blob, updated). Meta
// is left nil unless withMeta.
func (s *Store) ListLean(ctx context.Context, key string, withMeta bool, fn func(Entry) error) error {
	fields := index.ListFields
	if withMeta {
		fields = index.ListFieldsMeta
	}
	return readErr(s.idx.List(ctx, key, fields, fn))
}

// IndexWatch tells when anything was committed to the index: WebDAV caches
// collection listings until then, since clients list the same folder again
// and again and a listing read from the index stays valid until the next
// commit. It must be closed.
type IndexWatch struct{ w index.Watcher }

// NewIndexWatch returns an IndexWatch over the store's index.
func (s *Store) NewIndexWatch() *IndexWatch { return &IndexWatch{s.idx.Watch()} }

// Version returns a number that changes whenever another connection commits.
func (w *IndexWatch) Version(ctx context.Context) (int64, error) {
	v, err := w.w.Version(ctx)
	return v, readErr(err)
}

// Close releases the watch's connection.
func (w *IndexWatch) Close() error { return w.w.Close() }

// Search returns the objects q selects, newest first, from the index alone
// (index.Query): the voicemail browser's inbox and search.
func (s *Store) Search(ctx context.Context, q index.Query) ([]index.Hit, error) {
	return lookup(s.idx.Search(ctx, q))
}

// Groups returns the accounts below the folder under, or with account set
// that account's mailboxes, with how many objects each has.
func (s *Store) Groups(ctx context.Context, under, account string) ([]index.Group, error) {
	return lookup(s.idx.Groups(ctx, under, account))
}
