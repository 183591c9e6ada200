package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/attachd/attachd/server/index"
)

// Mkdir creates an empty folder at key. Its parent must exist.
func (s *Store) Mkdir(ctx context.Context, key string) error {
	s.tree.RLock()
	defer s.tree.RUnlock()
	if key == "" {
		return ErrExists
	}
	if _, err := s.get(ctx, key); err == nil {
		return ErrExists
	}
	if _, err := s.StatDir(ctx, key); err == nil {
		return ErrExists
	}
	parent, _ := Split(key)
	if _, err := s.StatDir(ctx, parent); err != nil {
		return fmt.Errorf("%w: parent folder missing", ErrConflict)
	}
	p, err := s.mkdirIndexed(ctx, key)
	if err != nil {
		return err
	}
	p.done()
	return nil
}

// mkdirIndexed creates the folder key on disk and in the index, or neither.
// Its parent must exist.
func (s *Store) mkdirIndexed(ctx context.Context, key string) (*placement, error) {
	p := &placement{s: s}
	err := failpoint("mkdir")
	if err == nil && s.shared {
		return p, s.update(ctx, func(tx index.Tx) error { return tx.PutDirs(key, time.Now()) })
	}
	if err == nil {
		err = s.root.Mkdir("objects/"+key, 0o750)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrExists
		}
		return nil, fmt.Errorf("create folder: %w", mapErr(err))
	}
	p.dirs = []string{"objects/" + key}
	parent, _ := Split(key)
	err = failpoint("mkdir-fsync")
	if err == nil {
		err = s.syncDir(join("objects", parent))
	}
	err = mapErr(err)
	if err == nil {
		err = s.update(ctx, func(tx index.Tx) error {
			if err := failpoint("index"); err != nil {
				return err
			}
			return tx.PutDirs(key, time.Now())
		})
	}
	if err != nil {
		return nil, s.rollback(p, err)
	}
	return p, nil
}

// RemoveAll removes the object or the folder (with everything below it) at key.
func (s *Store) RemoveAll(ctx context.Context, key string) error {
	if _, err := s.get(ctx, key); err == nil {
		return s.Delete(ctx, key)
	}
	if key == "" {
		return fmt.Errorf("%w: cannot remove the root", ErrConflict)
	}
	s.tree.Lock()
	defer s.tree.Unlock()
	return s.removeAllLocked(ctx, key)
}

// removeAllLocked removes the folder key; the caller holds the tree lock.
func (s *Store) removeAllLocked(ctx context.Context, key string) error {
	if _, err := s.StatDir(ctx, key); err != nil {
		return err
	}
	// Removing the sidecars is what deletes; move them out of the tree in one
	// rename first, so that a crash midway cannot leave half a folder.
	p, err := s.moveAside("objects/" + key)
	if errors.Is(err, fs.ErrNotExist) {
		p, err = &placement{s: s}, nil // only in the index: make it agree
	}
	if err != nil {
		return err
	}
	// Only the blob names are kept for after the commit, not the objects
	// with their metadata: a folder of a million objects costs tens of
	// megabytes, where the records would cost gigabytes.
	var blobs []string
	if err := s.update(ctx, func(tx index.Tx) error {
		blobs = blobs[:0] // a group commit that fails runs fn again alone
		if err := failpoint("index"); err != nil {
			return err
		}
		// One walk queues the deleted events and the blobs' collection.
		if err := tx.Walk(key, func(o Object) error {
			if err := s.enqueue(ctx, tx, ChangeDeleted, o); err != nil {
				return err
			}
			blobs = append(blobs, o.Blob)
			return s.collectLater(tx, o.Key, o.Blob)
		}); err != nil {
			return err
		}
		return tx.DeleteTree(key)
	}); err != nil {
		return s.rollback(p, err)
	}
	s.forgetAll()
	p.discard()
	for _, b := range blobs {
		s.removeBlob(b)
	}
	return nil
}

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
