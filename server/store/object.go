package store

import (
	"context"
	"errors"
	"io/fs"

	"github.com/attachd/attachd/server/index"
)

// Update changes the record of the object at key (metadata, properties,
// content type, modification time) without touching its bytes. fn returns
// false to leave the object as it was. The bytes, size and hash cannot change.
func (s *Store) Update(ctx context.Context, key string, fn func(*Object) bool) (Object, error) {
	s.tree.RLock()
	defer s.tree.RUnlock()
	mu := s.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	o, err := s.get(ctx, key)
	if err != nil {
		return o, err
	}
	n := o
	if !fn(&n) {
		return o, nil
	}
	n.Key, n.Blob, n.Size, n.SHA256, n.Created = o.Key, o.Blob, o.Size, o.SHA256, o.Created
	p, err := s.writeSidecar(n)
	if err != nil {
		return o, err
	}
	if err := s.update(ctx, func(tx index.Tx) error {
		if err := failpoint("index"); err != nil {
			return err
		}
		if err := tx.PutObject(n); err != nil {
			return err
		}
		// The backend's sidecar must follow the metadata too.
		return s.writes.updating(ctx, tx, n)
	}); err != nil {
		s.cache.drop(key)
		return o, s.rollback(p, err)
	}
	p.done()
	s.cache.put(n)
	s.writes.updated(ctx, n)
	return n, nil
}

// Delete removes the object at key.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.tree.RLock()
	defer s.tree.RUnlock()
	mu := s.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	return s.deleteLocked(ctx, key)
}

func (s *Store) deleteLocked(ctx context.Context, key string) error {
	o, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	// The sidecar goes aside first, so that a failure of the index can put
	// it back: deleting is committed only with the index.
	p, err := s.moveAside("objects/" + key)
	if errors.Is(err, fs.ErrNotExist) {
		p, err = &placement{s: s}, nil // gone from the tree already: make the index agree
	}
	if err != nil {
		return err
	}
	if err := s.update(ctx, func(tx index.Tx) error {
		if err := failpoint("index"); err != nil {
			return err
		}
		if err := tx.DeleteObject(key); err != nil {
			return err
		}
		if err := s.collectLater(tx, key, o.Blob); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, ChangeDeleted, o)
	}); err != nil {
		s.cache.drop(key)
		return s.rollback(p, err)
	}
	p.discard()
	s.cache.drop(key)
	s.removeBlob(o.Blob)
	s.writes.deleted(ctx, o)
	return nil
}
