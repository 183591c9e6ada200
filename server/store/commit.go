package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/attachd/attachd/server/index"
)

// The commit protocol (docs/design.md, "Commit"):
//
//  1. The bytes are written to tmp/, hashed, fsync'd and renamed to blobs/.
//  2. The new sidecar is written to tmp/ and fsync'd; the sidecar it replaces,
//     if any, is hard-linked into tmp/ so that it can be put back.
//  3. The new sidecar is renamed over objects/<key> and the folder fsync'd:
//     from here a crash leaves the new version, which the restart's
//     reconciliation indexes.
//  4. The index transaction commits: the change is visible and acknowledged.
//
// A failure in steps 1–3 leaves the previous state as it was. A failure of
// step 4 puts the previous sidecar back (undo), so a client that hears an
// error finds the previous state exactly; if even that fails, the change is
// "in doubt": both blobs are kept, the store is marked for reconciliation at
// the next start, and the sidecar on disk (the new version) wins there.

// failpoint is called at each step of a commit with the step's name. Tests
// make one step fail to check that a failure there leaves the previous state
// or the new one, never a mix; in production it does nothing.
var failpoint = func(step string) error { return nil }

// inDoubtError is a failure after the new sidecar was renamed into place that
// could not be undone: the new version stands on disk and the restart's
// reconciliation completes it. Its blob must be kept.
type inDoubtError struct{ err error }

func (e *inDoubtError) Error() string { return e.err.Error() }

func (e *inDoubtError) Unwrap() error { return e.err }

func isInDoubt(err error) bool {
	var d *inDoubtError
	return errors.As(err, &d)
}

// rollback undoes p after the index refused the change (err). If the undo
// fails too, the change is in doubt: the store is marked for reconciliation
// at the next start.
func (s *Store) rollback(p *placement, err error) error {
	if uerr := p.undo(); uerr != nil {
		s.inDoubt.Store(true)
		s.log.Error("a change failed after its sidecar was in place and could not be undone; "+
			"the next start reconciles the index with the data directory", "err", err, "undo_err", uerr)
		return &inDoubtError{err}
	}
	return err
}

// commit writes o's sidecar and index row under the key's lock, then deletes
// the blob of the version it replaced. It returns o as committed: an
// overwrite keeps the creation time of the version it replaces.
func (s *Store) commit(ctx context.Context, o Object, blobDurable func() error) (Object, error) {
	s.tree.RLock()
	defer s.tree.RUnlock()
	mu := s.stripe(o.Key)
	mu.Lock()
	defer mu.Unlock()

	change := ChangeUpdated
	d, old, guessed, err := s.previous(ctx, o.Key)
	if d != nil {
		defer d.close()
	}
	switch {
	case err == nil:
		o.Created = old.Created
	case errors.Is(err, ErrNotFound):
		change = ChangeCreated
	default:
		return Object{}, err
	}
	if !s.shared { // previous has checked them
		if err := s.checkParents(ctx, o.Key); err != nil {
			return Object{}, err
		}
	}
	if len(s.quotas) > 0 {
		// An overwrite adds only the difference.
		added := int64(0)
		if change == ChangeCreated {
			added = 1
		}
		if err := s.checkQuota(ctx, o.Key, o.Size-old.Size, added, nil); err != nil {
			return Object{}, err
		}
	}
	if err := s.writes.beforeCommit(ctx, o); err != nil {
		return Object{}, err
	}
	p, err := s.placeSidecar(o, d, blobDurable, guessed)
	if err != nil {
		s.writes.failedCommit(ctx, o, old, err)
		return Object{}, err
	}
	read := old.Blob // the version previous found; the transaction may find another
	if err := s.update(ctx, func(tx index.Tx) error {
		if err := failpoint("index"); err != nil {
			return err
		}
		if err := s.putObject(tx, &o, guessed, &old, &change); err != nil {
			return err
		}
		if err := s.checkQuotaTx(tx, o.Key, o.Size-old.Size, change == ChangeCreated, false, nil); err != nil {
			return err
		}
		if old.Blob != o.Blob {
			if err := s.collectLater(tx, o.Key, old.Blob); err != nil {
				return err
			}
		}
		return s.enqueue(ctx, tx, change, o, old.Blob)
	}); err != nil {
		s.cache.drop(o.Key)
		err = s.rollback(p, err)
		s.writes.failedCommit(ctx, o, old, err)
		return Object{}, err
	}
	p.done()
	s.cache.put(o)
	if parent, _ := Split(o.Key); parent != "" {
		s.dirs.Store(parent, struct{}{})
	}
	s.writes.committed(ctx, o, old)
	if old.Blob != read {
		// Another node stored the key between previous and the
		// transaction: its sidecar may have replaced o's in the backend
		// (through mode pushes before committing), and o's creation time
		// is now that of the version it replaced. The sidecar follows
		// the row. A third store in the same instant can still leave it
		// one version behind (docs/cluster.md).
		s.writes.updated(ctx, o)
	}
	if old.Blob != "" && old.Blob != o.Blob {
		s.removeBlob(old.Blob)
	}
	return o, nil
}

// previous returns the version of key that a change replaces, or
// ErrNotFound, and the key's folder in the objects tree held open for
// placeSidecar (nil if there is none yet, or with a shared index).
//
// A key whose sidecar is not in the objects tree has no version: a change
// places the sidecar before the index row is written and moves it aside
// before the row goes, under the key's lock, and a change that could not be
// undone sets inDoubt. So a new key costs one fstatat, not a read of the
// index (an eighth of a store's CPU time). guessed says the answer came from
// the tree: the index transaction checks it (a sidecar removed by hand
// leaves a row).
//
// A shared index is asked in one query for the key and its folders, the
// longest found first: the key's version, or a folder that is an object,
// which refuses the change as checkParents does. A round trip to
// PostgreSQL costs a store more than anything else it does there.
func (s *Store) previous(ctx context.Context, key string) (d *dirFD, old Object, guessed bool, err error) {
	if s.shared {
		old, err = s.longest(ctx, append(Parents(key), key))
		if err == nil && old.Key != key {
			return nil, Object{}, false, notAFolder(old.Key)
		}
		return nil, old, false, err
	}
	parent, base := Split(key)
	d, derr := s.openDirFD(join("objects", parent))
	switch {
	case s.inDoubt.Load():
	case errors.Is(derr, fs.ErrNotExist):
		return nil, Object{}, true, ErrNotFound
	case derr == nil:
		if ok, serr := d.exists(base); serr == nil && !ok {
			return d, Object{}, true, ErrNotFound
		}
	}
	old, err = s.get(ctx, key)
	return d, old, false, err
}

// putObject writes o's row in tx, learning what it replaces into old and
// change where that was not known for sure: another node may have stored
// the key since old was read (a shared index), or a sidecar removed by hand
// may have left its row (guessed). A key guessed new is created, which
// checks the guess for free; only a wrong guess reads the row it replaces.
// If what o replaces was not what was read before, o.Created is set again
// to keep the creation time of the version replaced, or to o's own if none.
func (s *Store) putObject(tx index.Tx, o *Object, guessed bool, old *Object, change *string) error {
	switch {
	case guessed && !s.shared:
		created, err := tx.CreateObject(*o)
		if err != nil || created {
			return err
		}
	case !s.shared:
		return tx.PutObject(*o)
	}
	cur, found, err := tx.SwapObject(*o)
	created := o.Updated
	switch {
	case err != nil:
		return err
	case found:
		*old, *change, created = cur, ChangeUpdated, cur.Created
	default:
		*old, *change = Object{}, ChangeCreated
	}
	if o.Created.Equal(created) {
		return nil
	}
	o.Created = created
	return tx.PutObject(*o)
}

// checkParents refuses a key below an existing object: a file cannot also
// be a folder.
func (s *Store) checkParents(ctx context.Context, key string) error {
	if parent, _ := Split(key); parent == "" || s.knownDir(parent) {
		return nil
	}
	if ps := Parents(key); len(ps) > 0 {
		if o, err := s.longest(ctx, ps); err == nil {
			return notAFolder(o.Key)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// notAFolder is the error for a change below the object at key.
func notAFolder(key string) error {
	return fmt.Errorf("%w: %q is an object, not a folder", ErrConflict, UnescapeKey(key))
}

// knownDir reports whether key was seen to be a folder. With a shared index
// nothing is known for long: another node may have removed it.
func (s *Store) knownDir(key string) bool {
	if s.shared {
		return false
	}
	_, ok := s.dirs.Load(key)
	return key != "" && ok
}
