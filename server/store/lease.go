package store

import (
	"context"

	"github.com/attachd/attachd/server/index"
)

// TryLease takes the cluster-wide lease name (the retention sweeper's, so
// that one node at a time sweeps) if no node holds it. With an index of its
// own (SQLite) a store is alone, and always gets it. The lease lasts until
// release is called, or until this node loses its index connection.
func (s *Store) TryLease(ctx context.Context, name string) (release func(), ok bool, err error) {
	if l, is := s.idx.(index.Leaser); is && s.shared {
		return l.TryLease(ctx, name)
	}
	return func() {}, true, nil
}
