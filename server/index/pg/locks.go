package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
)

const lockCols = `token, root, depth0, shared, owner, "user", created, expires`

// lockSQL takes the advisory lock every lock change holds: two nodes never
// both find no conflict and both take conflicting locks. (The version row
// serializes writers too; this says so where it matters.)
const lockSQL = `SELECT pg_advisory_xact_lock(7022365680605881346)` // 0x61747461636864_02: "attachd", 2

func scanLock(rows pgx.Row) (index.Lock, error) {
	var l index.Lock
	var created, expires int64
	if err := rows.Scan(&l.Token, &l.Root, &l.ZeroDepth, &l.Shared, &l.Owner, &l.User, &created, &expires); err != nil {
		return l, err
	}
	l.Created, l.Expires = time.Unix(0, created), time.Unix(0, expires)
	return l, nil
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
	q := `SELECT ` + lockCols + ` FROM attachd_locks WHERE expires > $1 AND (root = ANY($2)`
	args := []any{now.UnixNano(), cands}
	if below {
		lo, hi := index.Below(key)
		q += ` OR (root > $3 AND root < $4)`
		args = append(args, lo, hi)
	}
	return q + `)`, args
}

// Locks implements index.Index.
func (x *DB) Locks(ctx context.Context, key string, below bool, now time.Time) ([]index.Lock, error) {
	q, args := lockQuery(key, below, now)
	var out []index.Lock
	err := x.readPage(ctx, func(rows pgx.Rows) error {
		l, err := scanLock(rows)
		if err != nil {
			return err
		}
		if l.Covers(key) || (below && strings.HasPrefix(l.Root, key)) {
			out = append(out, l)
		}
		return nil
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("index: locks: %w", err)
	}
	return out, nil
}

// LockByToken implements index.Index.
func (x *DB) LockByToken(ctx context.Context, token string, now time.Time) (index.Lock, error) {
	rctx, cancel := read(ctx)
	defer cancel()
	l, err := scanLock(x.pool.QueryRow(rctx, `SELECT `+lockCols+` FROM attachd_locks WHERE token = $1 AND expires > $2`,
		token, now.UnixNano()))
	if errors.Is(err, pgx.ErrNoRows) {
		return l, index.ErrNotFound
	}
	if err != nil {
		return l, fmt.Errorf("index: lock: %w", x.fail(ctx, err))
	}
	return l, nil
}

// CreateLock implements index.Index.
func (x *DB) CreateLock(ctx context.Context, l index.Lock, now time.Time) error {
	return x.update(ctx, []string{lockSQL}, func(t *tx) error {
		if _, err := t.exec(`DELETE FROM attachd_locks WHERE expires <= $1`, now.UnixNano()); err != nil {
			return fmt.Errorf("index: purge locks: %w", err)
		}
		q, args := lockQuery(l.Root, !l.ZeroDepth, now)
		var held []index.Lock
		err := t.query(func(rows pgx.Rows) error {
			h, err := scanLock(rows)
			held = append(held, h)
			return err
		}, q, args...)
		if err != nil {
			return fmt.Errorf("index: locks: %w", err)
		}
		for _, h := range held {
			if h.Conflicts(l) {
				return &index.LockedError{Held: h}
			}
		}
		_, err = t.exec(`INSERT INTO attachd_locks (`+lockCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			l.Token, l.Root, l.ZeroDepth, l.Shared, clean(l.Owner), clean(l.User), l.Created.UnixNano(), l.Expires.UnixNano())
		if err != nil {
			return fmt.Errorf("index: create lock: %w", err)
		}
		return nil
	})
}

// RefreshLock implements index.Index.
func (x *DB) RefreshLock(ctx context.Context, token string, expires, now time.Time) (index.Lock, error) {
	var l index.Lock
	err := x.update(ctx, []string{lockSQL}, func(t *tx) error {
		found := false
		err := t.query(func(rows pgx.Rows) error {
			var err error
			l, err = scanLock(rows)
			found = true
			return err
		}, `UPDATE attachd_locks SET expires = $1 WHERE token = $2 AND expires > $3 RETURNING `+lockCols,
			expires.UnixNano(), token, now.UnixNano())
		if err != nil {
			return fmt.Errorf("index: refresh lock: %w", err)
		}
		if !found {
			return index.ErrNotFound
		}
		return nil
	})
	return l, err
}

// Unlock implements index.Index.
func (x *DB) Unlock(ctx context.Context, token string, now time.Time) error {
	return x.update(ctx, []string{lockSQL}, func(t *tx) error {
		tag, err := t.exec(`DELETE FROM attachd_locks WHERE token = $1 AND expires > $2`, token, now.UnixNano())
		if err != nil {
			return fmt.Errorf("index: unlock: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return index.ErrNotFound
		}
		return nil
	})
}

// ReleaseLocks implements index.Index. It looks before it writes: there is
// almost never a lock to release, and a read takes no writer's turn.
func (x *DB) ReleaseLocks(ctx context.Context, key string) error {
	lo, hi := index.Below(key)
	rctx, cancel := read(ctx)
	defer cancel()
	var some bool
	err := x.pool.QueryRow(rctx, `SELECT EXISTS (SELECT 1 FROM attachd_locks WHERE root = $1 OR (root > $2 AND root < $3))`,
		key, lo, hi).Scan(&some)
	if err != nil {
		return fmt.Errorf("index: release locks: %w", x.fail(ctx, err))
	}
	if !some {
		return nil
	}
	return x.update(ctx, []string{lockSQL}, func(t *tx) error {
		if _, err := t.exec(`DELETE FROM attachd_locks WHERE root = $1 OR (root > $2 AND root < $3)`, key, lo, hi); err != nil {
			return fmt.Errorf("index: release locks: %w", err)
		}
		return nil
	})
}
