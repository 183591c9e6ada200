package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
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

// ListLean is List for WebDAV listings: the same children, passed to fn one
// at a time, without the columns a PROPFIND never shows (blob, updated).
// Each object row comes back as one string that is split here: with
// modernc.org/sqlite every column read costs a trip through its C-to-Go
// layer, and for a 10 000-file PROPFIND the per-column reads were most of
// the time. Meta is left nil unless withMeta.
func (s *Store) ListLean(ctx context.Context, key string, withMeta bool, fn func(Entry) error) error {
	dirs, err := s.idx.r.QueryContext(ctx, `SELECT key, props, created, mtime FROM dirs WHERE parent = ? ORDER BY key`, key)
	if err != nil {
		return fmt.Errorf("index: list folders: %w", err)
	}
	var ds []Entry
	for dirs.Next() {
		var d Dir
		var props string
		if err := dirs.Scan(&d.Key, &props, &d.Created, &d.ModTime); err != nil {
			dirs.Close()
			return fmt.Errorf("index: %w", err)
		}
		d.Props = []byte(props)
		_, name := Split(d.Key)
		ds = append(ds, Entry{Key: d.Key, Name: name, IsDir: true, Dir: d})
	}
	dirs.Close()
	for _, e := range ds {
		if err := fn(e); err != nil {
			return err
		}
	}
	meta := `''`
	if withMeta {
		meta = `meta`
	}
	// Fields are joined with NUL. Keys escape it, hashes, numbers and the
	// JSON we write cannot hold it, and the metadata comes last; the texts a
	// client supplied lose theirs.
	rows, err := s.idx.r.QueryContext(ctx, `SELECT concat_ws(char(0), key, size, sha256,
		replace(content_type, char(0), ''), replace(doc_id, char(0), ''), replace(media_id, char(0), ''),
		created, mtime, props, `+meta+`) FROM objects WHERE parent = ? ORDER BY key`, key)
	if err != nil {
		return fmt.Errorf("index: list objects: %w", err)
	}
	defer rows.Close()
	var f [10]string
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		for i := range 9 {
			j := strings.IndexByte(row, 0)
			if j < 0 {
				return fmt.Errorf("index: malformed listing row")
			}
			f[i], row = row[:j], row[j+1:]
		}
		f[9] = row
		size, _ := strconv.ParseInt(f[1], 10, 64)
		created, _ := strconv.ParseInt(f[6], 10, 64)
		mtime, _ := strconv.ParseInt(f[7], 10, 64)
		o := Object{Key: f[0], Size: size, SHA256: f[2], ContentType: f[3], DocID: f[4], MediaID: f[5],
			Created: time.Unix(0, created), ModTime: time.Unix(0, mtime), Props: []byte(f[8])}
		if withMeta {
			o.Meta = []byte(f[9])
		}
		_, name := Split(o.Key)
		if err := fn(Entry{Key: o.Key, Name: name, Object: o}); err != nil {
			return err
		}
	}
	return rows.Err()
}

// IndexWatch tells when anything was committed to the index: WebDAV caches
// collection listings until then, since clients list the same folder again
// and again and a listing read from the index stays valid until the next
// commit. It reads SQLite's PRAGMA data_version on a connection of its own
// that never writes (the value is per connection), so it must be closed.
type IndexWatch struct {
	s    *Store
	mu   sync.Mutex
	conn *sql.Conn
}

// NewIndexWatch returns an IndexWatch over the store's index.
func (s *Store) NewIndexWatch() *IndexWatch { return &IndexWatch{s: s} }

// Version returns a number that changes whenever another connection commits.
func (w *IndexWatch) Version(ctx context.Context) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := w.s.idx.r.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("index: %w", err)
		}
		w.conn = c
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		w.conn.Close()
		w.conn = nil
		return 0, fmt.Errorf("index: data_version: %w", err)
	}
	return v, nil
}

// Close releases the watch's connection.
func (w *IndexWatch) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}
