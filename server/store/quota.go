package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/attachd/attachd/server/index"
)

// ErrQuota is a store, copy or move refused because the objects below a
// folder with a quota would then exceed its bytes or its count. Nothing of
// the refused change is stored.
var ErrQuota = errors.New("quota exceeded")

// Quota limits the objects below one folder: their total size, their
// number, or both. Quotas may nest; a change must fit every quota above it.
//
// Usage is read from the index when a change needs it (Index.Usage: one
// row that the index keeps for each quota's folder, Index.TrackUsage, or
// a range read over the keys below it), so it is exact whatever changed
// it: stores, deletes, moves, a reindex, or, with a shared index, other
// nodes. The check comes before the change commits; a store into a
// folder whose usage the index keeps is checked again inside its own
// transaction (checkQuotaTx), so racing stores fill such a quota exactly,
// on one node or many. For a folder past maxTrackedQuotas, stores of
// different keys that race into the same quota may each fit alone and
// together overshoot it, by at most one object each.
// Moves and copies hold the store's tree lock, so on one node they do not
// race; in a cluster they are checked again in their transactions as stores
// are (an object's copy or move, each object of a folder's copy, a folder's
// move with the quotas below its destination).
type Quota struct {
	Name    string // as configured ("/kazoo/acct"): messages and metrics
	Prefix  string // the folder's key; "" for the whole store
	Bytes   int64  // most bytes below Prefix; 0 for no limit
	Objects int64  // most objects below Prefix; 0 for no limit
}

// covers reports whether key is the quota's folder or below it.
func (q Quota) covers(key string) bool {
	return q.Prefix == "" || key == q.Prefix || strings.HasPrefix(key, q.Prefix+"/")
}

// maxTrackedQuotas bounds the quota folders whose usage the index keeps
// (Index.TrackUsage): keeping one costs every change to the index a little
// (with SQLite, ~0.14 µs per folder kept), while reading an untracked one
// costs only the stores into it, in proportion to the folder's size.
var maxTrackedQuotas = 64 // a variable for tests

// trackQuotas has the index keep the usage of the quotas' folders, or of
// the maxTrackedQuotas largest of them. A shared index keeps them for every
// node, and the last node to ask sets them: the nodes of a cluster share
// one configuration.
func (s *Store) trackQuotas(ctx context.Context) error {
	var prefixes []string
	seen := map[string]bool{}
	for _, q := range s.quotas {
		if !seen[q.Prefix] {
			seen[q.Prefix] = true
			prefixes = append(prefixes, q.Prefix)
		}
	}
	if len(prefixes) > maxTrackedQuotas {
		objects := map[string]int64{}
		for _, p := range prefixes {
			_, n, err := s.idx.Usage(ctx, p)
			if err != nil {
				return err
			}
			objects[p] = n
		}
		slices.SortStableFunc(prefixes, func(a, b string) int { return cmp.Compare(objects[b], objects[a]) })
		s.log.Info("more quota folders than the index keeps the usage of; the others' checks read their folders",
			"quota_folders", len(prefixes), "kept", maxTrackedQuotas)
		prefixes = prefixes[:maxTrackedQuotas]
	}
	return s.idx.TrackUsage(ctx, prefixes)
}

// checkQuotaTx repeats checkQuota inside a store's own transaction, after
// its change, for the quotas whose usage the index keeps (a row read):
// writers are serialized there, so stores racing into one folder cannot
// together pass its quota. Whether a folder's row is kept is the index's
// answer, not this process's: the nodes of a cluster share the rows. bytes
// and created are what the change added; a quota for which same returns
// true is left out (a move within it). With folder true key is a folder
// the change brought, and the quotas below it are checked too, as
// checkMoveQuota does: whatever is below them came with the change.
func (s *Store) checkQuotaTx(tx index.Tx, key string, bytes int64, created, folder bool, same func(Quota) bool) error {
	for _, q := range s.quotas {
		overBytes := q.Bytes > 0 && bytes > 0
		overObjects := q.Objects > 0 && created
		if folder && strings.HasPrefix(q.Prefix, key+"/") {
			overBytes, overObjects = q.Bytes > 0, q.Objects > 0
		} else if !q.covers(key) {
			continue
		}
		if !overBytes && !overObjects || same != nil && same(q) {
			continue
		}
		b, n, err := tx.KeptUsage(q.Prefix)
		if errors.Is(err, index.ErrNotFound) {
			continue // checked before the transaction, by a sum
		}
		if err != nil {
			return err
		}
		if overBytes && b > q.Bytes {
			return fmt.Errorf("%w: %s would hold %d of its %d bytes", ErrQuota, q.Name, b, q.Bytes)
		}
		if overObjects && n > q.Objects {
			return fmt.Errorf("%w: %s would hold %d of its %d objects", ErrQuota, q.Name, n, q.Objects)
		}
	}
	return nil
}

// QuotaUsage is a quota and what is below its folder now.
type QuotaUsage struct {
	Quota
	UsedBytes   int64
	UsedObjects int64
}

// Quotas returns every configured quota with its usage, in configuration order.
func (s *Store) Quotas(ctx context.Context) ([]QuotaUsage, error) {
	out := make([]QuotaUsage, 0, len(s.quotas))
	for _, q := range s.quotas {
		b, n, err := s.idx.Usage(ctx, q.Prefix)
		if err != nil {
			return nil, readErr(err)
		}
		out = append(out, QuotaUsage{q, b, n})
	}
	return out, nil
}

// QuotaOf returns the byte quota that leaves the least room for the folder
// key, with its usage, or ok false if no quota limits the bytes there. The
// WebDAV drive shows it as the folder's RFC 4331 quota properties.
func (s *Store) QuotaOf(ctx context.Context, key string) (qu QuotaUsage, ok bool, err error) {
	return s.QuotaReader().Of(ctx, key)
}

// HasQuotas reports whether any quota is configured.
func (s *Store) HasQuotas() bool { return len(s.quotas) > 0 }

// QuotaReader is QuotaOf for many folders at once (a PROPFIND's): it reads
// each quota's usage once. It is for one goroutine and a short while.
type QuotaReader struct {
	s    *Store
	seen map[string]QuotaUsage
}

// QuotaReader returns a new QuotaReader.
func (s *Store) QuotaReader() *QuotaReader {
	return &QuotaReader{s: s, seen: map[string]QuotaUsage{}}
}

// Of is Store.QuotaOf.
func (r *QuotaReader) Of(ctx context.Context, key string) (qu QuotaUsage, ok bool, err error) {
	for _, q := range r.s.quotas {
		if q.Bytes <= 0 || !q.covers(key) {
			continue
		}
		u, done := r.seen[q.Prefix]
		if !done {
			b, n, err := r.s.idx.Usage(ctx, q.Prefix)
			if err != nil {
				return qu, false, readErr(err)
			}
			u = QuotaUsage{q, b, n}
			r.seen[q.Prefix] = u
		}
		if !ok || u.Bytes-u.UsedBytes < qu.Bytes-qu.UsedBytes {
			qu, ok = u, true
		}
	}
	return qu, ok, nil
}

// checkQuota refuses a change that adds bytes and objects (either may be
// negative) below key if that would exceed a quota over key. A quota for
// which same returns true is left out: a move within it changes nothing.
func (s *Store) checkQuota(ctx context.Context, key string, bytes, objects int64, same func(Quota) bool) error {
	for _, q := range s.quotas {
		if !q.covers(key) || (same != nil && same(q)) {
			continue
		}
		overBytes := q.Bytes > 0 && bytes > 0
		overObjects := q.Objects > 0 && objects > 0
		if !overBytes && !overObjects {
			continue
		}
		b, n, err := s.idx.Usage(ctx, q.Prefix)
		if err != nil {
			return readErr(err)
		}
		if overBytes && b+bytes > q.Bytes {
			return fmt.Errorf("%w: %s holds %d of its %d bytes; %d more do not fit", ErrQuota, q.Name, b, q.Bytes, bytes)
		}
		if overObjects && n+objects > q.Objects {
			return fmt.Errorf("%w: %s holds %d of its %d objects", ErrQuota, q.Name, n, q.Objects)
		}
	}
	return nil
}

// checkMoveQuota refuses a copy or move of src to dst that would exceed a
// quota over dst. What it replaces at dst (overwrite) is counted as freed.
// It returns what the change adds below dst, for moveDirIndex to check
// again.
func (s *Store) checkMoveQuota(ctx context.Context, src, dst string, srcObj *Object, replaced *Object, replacedDir bool, move bool) (added amount, err error) {
	if len(s.quotas) == 0 {
		return amount{}, nil
	}
	var bytes, objects int64
	if srcObj != nil {
		bytes, objects = srcObj.Size, 1
	} else {
		b, n, err := s.idx.Usage(ctx, src)
		if err != nil {
			return amount{}, readErr(err)
		}
		bytes, objects = b, n
	}
	if replaced != nil {
		bytes, objects = bytes-replaced.Size, objects-1
	} else if replacedDir {
		b, n, err := s.idx.Usage(ctx, dst)
		if err != nil {
			return amount{}, readErr(err)
		}
		bytes, objects = bytes-b, objects-n
	}
	var same func(Quota) bool
	if move {
		same = func(q Quota) bool { return q.covers(src) }
	}
	added = amount{bytes, objects}
	if err := s.checkQuota(ctx, dst, bytes, objects, same); err != nil {
		return added, err
	}
	if srcObj != nil {
		return added, nil
	}
	// A folder brings its subfolders to quotas below dst too.
	for _, q := range s.quotas {
		if !strings.HasPrefix(q.Prefix, dst+"/") || (same != nil && same(q)) {
			continue
		}
		b, n, err := s.idx.Usage(ctx, src+q.Prefix[len(dst):])
		if err != nil {
			return amount{}, readErr(err)
		}
		if !replacedDir {
			ub, un, err := s.idx.Usage(ctx, q.Prefix)
			if err != nil {
				return amount{}, readErr(err)
			}
			b, n = b+ub, n+un
		}
		if (q.Bytes > 0 && b > q.Bytes) || (q.Objects > 0 && n > q.Objects) {
			return added, fmt.Errorf("%w: %s would hold %d bytes in %d objects, over its %d bytes or %d objects", ErrQuota, q.Name, b, n, q.Bytes, q.Objects)
		}
	}
	return added, nil
}

// amount is bytes and objects a change adds.
type amount struct{ bytes, objects int64 }

// CheckQuota refuses, before its body is read, a store of size bytes at key
// that a quota would refuse at the commit (ErrQuota), so that a client is
// not made to send what cannot be kept. size -1 (unknown) is checked at the
// commit only; so is everything when the current object cannot be read.
func (s *Store) CheckQuota(ctx context.Context, key string, size int64) error {
	if len(s.quotas) == 0 || size < 0 {
		return nil
	}
	added := int64(0)
	old, err := s.get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		added = 1
	case err != nil:
		return nil
	}
	return s.checkQuota(ctx, key, size-old.Size, added, nil)
}

// Usage returns the bytes and the number of every object in the index. It
// sums the whole index: callers read it now and then, not per request.
func (s *Store) Usage(ctx context.Context) (bytes, objects int64, err error) {
	return s.idx.Usage(ctx, "")
}
