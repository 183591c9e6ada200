package store

import (
	"context"
	"database/sql"
	"fmt"
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
	err = s.idx.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE dirs SET props = ?, mtime = ? WHERE key = ?`, string(jsonOr(n.Props)), n.ModTime, key)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("index: update folder %q: %w", UnescapeKey(key), err)
	}
	return n, nil
}

// WalkObjects calls fn for every object at or below the folder prefix ("" for
// all), in key order, from the index alone.
func (s *Store) WalkObjects(ctx context.Context, prefix string, fn func(Object) error) error {
	lo, hi := prefixRange(prefix)
	rows, err := s.idx.r.QueryContext(ctx, `SELECT `+objectCols+` FROM objects WHERE key > ? AND key < ? ORDER BY key`, lo, hi)
	if err != nil {
		return fmt.Errorf("index: walk objects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return rows.Err()
}
