package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/pg"
	"github.com/attachd/attachd/server/index/sqlite"
)

// The index (package index) is a cache of what the objects tree says (design
// invariant 5): everything in it but locks and hook deliveries can be rebuilt
// by reindex. This file is where the store chooses and opens it (the one
// place that names an implementation), and where the index's errors become
// the store's.

// openCheckedIndex opens the data directory's SQLite index, which checks
// itself. A corrupt one is moved aside, named with the time, and a new one is
// made: the caller rebuilds it from the sidecars. What only the index held —
// WebDAV locks, hook deliveries not yet made — is lost with it, and the log
// says so.
func (s *Store) openCheckedIndex() (idx index.Index, fresh bool, err error) {
	path := filepath.Join(s.dir, "index.db")
	_, statErr := s.root.Stat("index.db")
	fresh = errors.Is(statErr, fs.ErrNotExist)
	db, err := sqlite.Open(path)
	if err == nil {
		return db, fresh, nil
	}
	if fresh || !errors.Is(err, index.ErrCorrupt) {
		return nil, false, err
	}
	aside, merr := sqlite.MoveAside(path)
	if merr != nil {
		return nil, false, merr
	}
	s.log.Error("the index was corrupt; moved it aside and rebuilding it from the sidecars "+
		"(WebDAV locks and undelivered hook events it held are lost)", "moved_to", filepath.Base(aside), "err", err)
	db, err = sqlite.Open(path)
	if err != nil {
		return nil, false, err
	}
	return db, true, nil
}

// openIndexAt opens the PostgreSQL index at url, which every node of a
// cluster shares; it migrates its schema if this node is the first of a
// newer version. Its errors name the server, never the password.
func openIndexAt(url string) (index.Index, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pg.Open(ctx, url)
}

// RedactIndexURL returns url with its password hidden, for logs.
func RedactIndexURL(url string) string { return pg.Redact(url) }

// openSharedIndex opens the index of the data directory dir beside the
// server that owns it, for the commands that read and repair its outbox: or
// the PostgreSQL index at url.
func openSharedIndex(dir, url string) (index.Index, error) {
	if url != "" {
		return openIndexAt(url)
	}
	return sqlite.OpenExisting(filepath.Join(dir, "index.db"))
}

// update runs fn in one index transaction, and maps its failure.
func (s *Store) update(ctx context.Context, fn func(index.Tx) error) error {
	return indexErr(s.idx.Update(ctx, fn))
}

// indexErr maps an index failure to the store's errors: a full disk is
// ErrNoSpace (507), as it is for the bytes; a missing record is ErrNotFound.
func indexErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, index.ErrNotFound) && !errors.Is(err, ErrNotFound):
		return ErrNotFound
	case errors.Is(err, index.ErrFull):
		return fmt.Errorf("%w (index)", ErrNoSpace)
	case errors.Is(err, index.ErrUnavailable):
		return unavailable(err)
	}
	return mapErr(err)
}

// unavailable makes an index that cannot be reached the store's
// ErrUnavailable: the client hears 503 and retries, as for the backend.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// readErr maps an index read's failure to reach the index, and leaves every
// other error (those of the caller's callback among them) as it is.
func readErr(err error) error {
	if errors.Is(err, index.ErrUnavailable) {
		return unavailable(err)
	}
	return err
}

// lookup maps the errors of an index read.
func lookup[T any](v T, err error) (T, error) {
	switch {
	case errors.Is(err, index.ErrNotFound):
		return v, ErrNotFound
	case errors.Is(err, index.ErrUnavailable):
		return v, unavailable(err)
	}
	return v, err
}

// longest returns the object with the longest key among keys.
func (s *Store) longest(ctx context.Context, keys []string) (Object, error) {
	return lookup(s.idx.Longest(ctx, keys))
}

// blobReferenced reports whether any object names blob: copies share blobs.
func (s *Store) blobReferenced(ctx context.Context, blob string) bool {
	ok, _ := s.idx.BlobInUse(ctx, blob)
	return ok
}
