package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attachd/attachd/server/index"
)

// WebDAV locks live in the index, not in the objects tree: they are state of
// the WebDAV protocol, not of any object, and must survive a restart (clients
// such as Windows and davfs2 hold them across reconnects). reindex leaves them
// alone.

// ErrLocked is returned when a lock conflicts with one already held.
var ErrLocked = index.ErrLocked

// Lock is a WebDAV write lock (RFC 4918 §6) on the key Root.
type Lock = index.Lock

// Locks returns the live locks that cover key, and with below also the locks
// on keys below it (what a DELETE or MOVE of a folder must answer to).
func (s *Store) Locks(ctx context.Context, key string, below bool) ([]Lock, error) {
	locks, err := s.idx.Locks(ctx, key, below, time.Now())
	return locks, readErr(err)
}

// CreateLock records l unless a live lock conflicts with it: an exclusive
// lock conflicts with any other lock on the same resources, a shared lock
// only with exclusive ones (RFC 4918 §6.2). The check and the insert are one
// transaction. Expired locks are purged on the way.
func (s *Store) CreateLock(ctx context.Context, l Lock) error {
	err := s.idx.CreateLock(ctx, l, time.Now())
	var le *index.LockedError
	if errors.As(err, &le) {
		return fmt.Errorf("%w: %q is locked", ErrLocked, UnescapeKey(le.Held.Root))
	}
	return indexErr(err)
}

// LockByToken returns the live lock with the given token, or ErrNotFound.
func (s *Store) LockByToken(ctx context.Context, token string) (Lock, error) {
	return lookup(s.idx.LockByToken(ctx, token, time.Now()))
}

// RefreshLock sets a new expiry on the live lock with the given token.
func (s *Store) RefreshLock(ctx context.Context, token string, expires time.Time) (Lock, error) {
	return lookup(s.idx.RefreshLock(ctx, token, expires, time.Now()))
}

// Unlock removes the lock with the given token; ErrNotFound if there is none.
func (s *Store) Unlock(ctx context.Context, token string) error {
	return indexErr(s.idx.Unlock(ctx, token, time.Now()))
}

// ReleaseLocks removes the locks on key and on everything below it: the
// resources they protected are gone (DELETE) or elsewhere (MOVE), and a lock
// left behind would block whoever next creates something there (golang/go #42839).
func (s *Store) ReleaseLocks(ctx context.Context, key string) error {
	return indexErr(s.idx.ReleaseLocks(ctx, key))
}
