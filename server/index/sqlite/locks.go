package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/attachd/attachd/server/index"
)

const lockCols = `token, root, depth0, shared, owner, user, created, expires`

func scanLocks(rows *sql.Rows) ([]index.Lock, error) {
	defer rows.Close()
	var out []index.Lock
	for rows.Next() {
		var l index.Lock
		var created, expires int64
		if err := rows.Scan(&l.Token, &l.Root, &l.ZeroDepth, &l.Shared, &l.Owner, &l.User, &created, &expires); err != nil {
			return nil, fmt.Errorf("index: read lock: %w", err)
		}
		l.Created, l.Expires = time.Unix(0, created), time.Unix(0, expires)
		out = append(out, l)
	}
	return out, rows.Err()
}

// lockQuery selects the live locks that cover key, and with below also those
// on keys below it: the locks on key and its parents, and the keys in the
// range below it.
func lockQuery(key string, below bool, now time.Time) (string, []any) {
	cands := []string{key}
	for k := key; k != ""; {
		k = index.Parent(k)
		cands = append(cands, k)
	}
	args := []any{now.UnixNano()}
	q := `SELECT ` + lockCols + ` FROM dav_locks WHERE expires > ? AND (root IN (?` +
		strings.Repeat(",?", len(cands)-1) + `)`
	for _, c := range cands {
		args = append(args, c)
	}
	if below {
		lo, hi := index.Below(key)
		q += ` OR (root > ? AND root < ?)`
		args = append(args, lo, hi)
	}
	return q + `)`, args
}

// Locks implements index.Index.
func (x *DB) Locks(ctx context.Context, key string, below bool, now time.Time) ([]index.Lock, error) {
	if x.noLocks.Load() {
		return nil, nil // every write would otherwise query for them
	}
	q, args := lockQuery(key, below, now)
	rows, err := x.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("index: locks: %w", err)
	}
	all, err := scanLocks(rows)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, l := range all {
		if l.Covers(key) || (below && strings.HasPrefix(l.Root, key)) {
			out = append(out, l)
		}
	}
	return out, nil
}

// LockByToken implements index.Index.
func (x *DB) LockByToken(ctx context.Context, token string, now time.Time) (index.Lock, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT `+lockCols+` FROM dav_locks WHERE token = ? AND expires > ?`,
		token, now.UnixNano())
	if err != nil {
		return index.Lock{}, fmt.Errorf("index: lock: %w", err)
	}
	ls, err := scanLocks(rows)
	if err != nil {
		return index.Lock{}, err
	}
	if len(ls) == 0 {
		return index.Lock{}, index.ErrNotFound
	}
	return ls[0], nil
}

// CreateLock implements index.Index.
func (x *DB) CreateLock(ctx context.Context, l index.Lock, now time.Time) error {
	x.lockMu.Lock()
	defer x.lockMu.Unlock()
	x.noLocks.Store(false) // before the lock can exist
	return x.update(ctx, func(t *tx) error {
		if _, err := t.exec(`DELETE FROM dav_locks WHERE expires <= ?`, now.UnixNano()); err != nil {
			return fmt.Errorf("index: purge locks: %w", err)
		}
		q, args := lockQuery(l.Root, !l.ZeroDepth, now)
		rows, err := t.tx.QueryContext(t.ctx, q, args...)
		if err != nil {
			return fmt.Errorf("index: locks: %w", err)
		}
		held, err := scanLocks(rows)
		if err != nil {
			return err
		}
		for _, h := range held {
			if h.Conflicts(l) {
				return &index.LockedError{Held: h}
			}
		}
		_, err = t.exec(`INSERT INTO dav_locks (`+lockCols+`) VALUES (?,?,?,?,?,?,?,?)`,
			l.Token, l.Root, l.ZeroDepth, l.Shared, l.Owner, l.User, l.Created.UnixNano(), l.Expires.UnixNano())
		if err != nil {
			return fmt.Errorf("index: create lock: %w", err)
		}
		return nil
	})
}

// RefreshLock implements index.Index.
func (x *DB) RefreshLock(ctx context.Context, token string, expires, now time.Time) (index.Lock, error) {
	l, err := x.LockByToken(ctx, token, now)
	if err != nil {
		return l, err
	}
	l.Expires = expires
	err = x.update(ctx, func(t *tx) error {
		_, err := t.exec(`UPDATE dav_locks SET expires = ? WHERE token = ?`, expires.UnixNano(), token)
		return err
	})
	if err != nil {
		return l, fmt.Errorf("index: refresh lock: %w", err)
	}
	return l, nil
}

// Unlock implements index.Index.
func (x *DB) Unlock(ctx context.Context, token string, now time.Time) error {
	x.lockMu.Lock()
	defer x.lockMu.Unlock()
	defer x.recountLocks(ctx)
	return x.update(ctx, func(t *tx) error {
		res, err := t.exec(`DELETE FROM dav_locks WHERE token = ? AND expires > ?`, token, now.UnixNano())
		if err != nil {
			return fmt.Errorf("index: unlock: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return index.ErrNotFound
		}
		return nil
	})
}

// ReleaseLocks implements index.Index.
func (x *DB) ReleaseLocks(ctx context.Context, key string) error {
	if x.noLocks.Load() {
		return nil
	}
	x.lockMu.Lock()
	defer x.lockMu.Unlock()
	defer x.recountLocks(ctx)
	lo, hi := index.Below(key)
	return x.update(ctx, func(t *tx) error {
		if _, err := t.exec(`DELETE FROM dav_locks WHERE root = ? OR (root > ? AND root < ?)`, key, lo, hi); err != nil {
			return fmt.Errorf("index: release locks: %w", err)
		}
		return nil
	})
}

// recountLocks sets noLocks after locks were removed, under lockMu.
func (x *DB) recountLocks(ctx context.Context) {
	var n int
	err := x.w.QueryRowContext(context.WithoutCancel(ctx), `SELECT count(*) FROM dav_locks`).Scan(&n)
	x.noLocks.Store(err == nil && n == 0)
}
