package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WebDAV locks live in the index, not in the objects tree: they are state of
// the WebDAV protocol, not of any object, and must survive a restart (clients
// such as Windows and davfs2 hold them across reconnects). reindex leaves them
// alone.
func init() {
	schemas = append(schemas, `
CREATE TABLE IF NOT EXISTS dav_locks (
	token   TEXT PRIMARY KEY,
	root    TEXT NOT NULL,
	depth0  INTEGER NOT NULL,
	shared  INTEGER NOT NULL,
	owner   TEXT NOT NULL,
	user    TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dav_locks_root ON dav_locks(root);
`)
}

// ErrLocked is returned when a lock conflicts with one already held.
var ErrLocked = errors.New("locked")

// Lock is a WebDAV write lock (RFC 4918 §6) on the key Root.
type Lock struct {
	Token     string    // the lock token, a URI
	Root      string    // key of the locked resource
	ZeroDepth bool      // covers Root only, not the keys below it
	Shared    bool      // a shared lock; else exclusive
	Owner     string    // the client's owner XML, returned as given
	User      string    // login that took the lock
	Created   time.Time //
	Expires   time.Time // the lock is gone after this
}

// Covers reports whether the lock applies to key.
func (l Lock) Covers(key string) bool {
	if key == l.Root {
		return true
	}
	if l.ZeroDepth {
		return false
	}
	return l.Root == "" || strings.HasPrefix(key, l.Root+"/")
}

const lockCols = `token, root, depth0, shared, owner, user, created, expires`

func scanLocks(rows *sql.Rows) ([]Lock, error) {
	defer rows.Close()
	var out []Lock
	for rows.Next() {
		var l Lock
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
// on keys below it.
func lockQuery(key string, below bool, now time.Time) (string, []any) {
	cands := append(Parents(key), key)
	if key != "" {
		cands = append(cands, "")
	}
	args := []any{now.UnixNano()}
	q := `SELECT ` + lockCols + ` FROM dav_locks WHERE expires > ? AND (root IN (?` +
		strings.Repeat(",?", len(cands)-1) + `)`
	for _, c := range cands {
		args = append(args, c)
	}
	if below {
		lo, hi := prefixRange(key)
		q += ` OR (root > ? AND root < ?)`
		args = append(args, lo, hi)
	}
	return q + `)`, args
}

// Locks returns the live locks that cover key, and with below also the locks
// on keys below it (what a DELETE or MOVE of a folder must answer to).
func (s *Store) Locks(ctx context.Context, key string, below bool) ([]Lock, error) {
	if s.locks.none.Load() {
		return nil, nil // no lock anywhere: every write would otherwise query for them
	}
	q, args := lockQuery(key, below, time.Now())
	rows, err := s.idx.r.QueryContext(ctx, q, args...)
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

// CreateLock records l unless a live lock conflicts with it: an exclusive
// lock conflicts with any other lock on the same resources, a shared lock
// only with exclusive ones (RFC 4918 §6.2). The check and the insert are one
// transaction. Expired locks are purged on the way.
func (s *Store) CreateLock(ctx context.Context, l Lock) error {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	s.locks.none.Store(false) // before the lock can exist
	now := time.Now()
	return s.idx.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dav_locks WHERE expires <= ?`, now.UnixNano()); err != nil {
			return fmt.Errorf("index: purge locks: %w", err)
		}
		q, args := lockQuery(l.Root, !l.ZeroDepth, now)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("index: locks: %w", err)
		}
		held, err := scanLocks(rows)
		if err != nil {
			return err
		}
		for _, h := range held {
			if !h.Covers(l.Root) && !l.Covers(h.Root) {
				continue
			}
			if !h.Shared || !l.Shared {
				return fmt.Errorf("%w: %q is locked", ErrLocked, UnescapeKey(h.Root))
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO dav_locks (`+lockCols+`) VALUES (?,?,?,?,?,?,?,?)`,
			l.Token, l.Root, l.ZeroDepth, l.Shared, l.Owner, l.User, l.Created.UnixNano(), l.Expires.UnixNano())
		if err != nil {
			return fmt.Errorf("index: create lock: %w", err)
		}
		return nil
	})
}

// LockByToken returns the live lock with the given token, or ErrNotFound.
func (s *Store) LockByToken(ctx context.Context, token string) (Lock, error) {
	rows, err := s.idx.r.QueryContext(ctx, `SELECT `+lockCols+` FROM dav_locks WHERE token = ? AND expires > ?`,
		token, time.Now().UnixNano())
	if err != nil {
		return Lock{}, fmt.Errorf("index: lock: %w", err)
	}
	ls, err := scanLocks(rows)
	if err != nil {
		return Lock{}, err
	}
	if len(ls) == 0 {
		return Lock{}, ErrNotFound
	}
	return ls[0], nil
}

// RefreshLock sets a new expiry on the live lock with the given token.
func (s *Store) RefreshLock(ctx context.Context, token string, expires time.Time) (Lock, error) {
	l, err := s.LockByToken(ctx, token)
	if err != nil {
		return l, err
	}
	l.Expires = expires
	err = s.idx.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE dav_locks SET expires = ? WHERE token = ?`, expires.UnixNano(), token)
		return err
	})
	if err != nil {
		return l, fmt.Errorf("index: refresh lock: %w", err)
	}
	return l, nil
}

// Unlock removes the lock with the given token; ErrNotFound if there is none.
func (s *Store) Unlock(ctx context.Context, token string) error {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	defer s.recountLocks(ctx)
	return s.idx.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM dav_locks WHERE token = ? AND expires > ?`, token, time.Now().UnixNano())
		if err != nil {
			return fmt.Errorf("index: unlock: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// ReleaseLocks removes the locks on key and on everything below it: the
// resources they protected are gone (DELETE) or elsewhere (MOVE), and a lock
// left behind would block whoever next creates something there (golang/go #42839).
func (s *Store) ReleaseLocks(ctx context.Context, key string) error {
	if s.locks.none.Load() {
		return nil
	}
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	defer s.recountLocks(ctx)
	lo, hi := prefixRange(key)
	return s.idx.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dav_locks WHERE root = ? OR (root > ? AND root < ?)`, key, lo, hi); err != nil {
			return fmt.Errorf("index: release locks: %w", err)
		}
		return nil
	})
}

// lockHint lets writes skip the lock query while no lock exists, which is
// almost always: Kazoo never locks, and WebDAV clients lock briefly.
type lockHint struct {
	mu   sync.Mutex  // held by whatever adds or removes locks
	none atomic.Bool // true only while the table is known to be empty
}

// recountLocks sets the hint after locks were removed, under locks.mu: a lock
// created meanwhile cannot be missed, since CreateLock takes the same mutex.
func (s *Store) recountLocks(ctx context.Context) {
	var n int
	err := s.idx.w.QueryRowContext(context.WithoutCancel(ctx), `SELECT count(*) FROM dav_locks`).Scan(&n)
	s.locks.none.Store(err == nil && n == 0)
}
