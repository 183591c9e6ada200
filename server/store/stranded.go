package store

import (
	"context"
	"errors"
	"math/rand/v2"

	"github.com/attachd/attachd/server/index"
)

// StrandedSample is what SampleStranded found: how many of the objects it
// looked at have their bytes nowhere this store reads from.
type StrandedSample struct {
	Objects int64  // in the index
	Sampled int    // looked at
	Missing int    // of those, with bytes neither in the spool nor the backend
	Unknown int    // of those, the backend could not be asked about
	Example string // the key of one missing, unescaped
	// SpoolOnly counts those whose bytes are in the data directory but not
	// in the backend: pending replication, or left there by a switch from
	// "local" without migrating (the replicator moves changes, not what
	// was there before). 0 without a backend.
	SpoolOnly   int
	SpoolOnlyEx string // the key of one, unescaped
}

// Estimate is how many of the index's objects are likely missing: the
// sample's share of them, at least the number found.
func (s StrandedSample) Estimate() int64 {
	if s.Sampled-s.Unknown <= 0 {
		return 0
	}
	return max(int64(s.Missing), s.Objects*int64(s.Missing)/int64(s.Sampled-s.Unknown))
}

// SampleStranded looks for the bytes of a few objects of the index — the
// first in key order and up to n chosen at random, by a random walk down
// the folders — in the spool and the backend, with one Stat each. It is
// cheap enough for every start, and finds the mistake of switching
// [storage] backend without migrating (docs/migrate.md): then every object
// stored before is missing, and any sample shows it. It does not prove a
// single missing object absent otherwise: only a walk of all would.
func (s *Store) SampleStranded(ctx context.Context, n int) (StrandedSample, error) {
	var res StrandedSample
	_, objects, err := s.idx.Usage(ctx, "")
	if err != nil || objects == 0 {
		return res, readErr(err)
	}
	res.Objects = objects
	seen := map[string]bool{}
	var keys []string
	errStop := errors.New("stop")
	if err := s.idx.Walk(ctx, "", func(o index.Object) error { keys = append(keys, o.Key); return errStop }); err != nil && !errors.Is(err, errStop) {
		return res, readErr(err)
	}
	if len(keys) > 0 {
		seen[keys[0]] = true
	}
	for tries := 0; len(keys) <= n && tries < 2*n; tries++ {
		k, err := s.randomKey(ctx)
		if err != nil {
			return res, err
		}
		if k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		o, err := lookup(s.idx.Get(ctx, k))
		if err != nil {
			continue // deleted meanwhile
		}
		res.Sampled++
		switch spool, remote, err := s.bytesFound(ctx, o); {
		case err != nil:
			res.Unknown++
		case !spool && !remote:
			res.Missing++
			if res.Example == "" {
				res.Example = UnescapeKey(o.Key)
			}
		case s.remote != nil && !remote:
			res.SpoolOnly++
			if res.SpoolOnlyEx == "" {
				res.SpoolOnlyEx = UnescapeKey(o.Key)
			}
		}
	}
	return res, nil
}

// randomKey walks down from the root to an object, choosing a random entry
// of each folder; "" if it ends in an empty folder.
func (s *Store) randomKey(ctx context.Context) (string, error) {
	parent := ""
	for range 32 {
		type entry struct {
			key string
			dir bool
		}
		var es []entry
		if err := s.idx.List(ctx, parent, index.ListFields, func(e index.Entry) error {
			es = append(es, entry{e.Key, e.IsDir})
			return nil
		}); err != nil {
			return "", readErr(err)
		}
		if len(es) == 0 {
			return "", nil
		}
		e := es[rand.IntN(len(es))]
		if !e.dir {
			return e.key, nil
		}
		parent = e.key
	}
	return "", nil
}

// bytesFound reports whether o's blob is in the spool, and whether it is in
// the backend (or, in a cluster, another node's spool).
func (s *Store) bytesFound(ctx context.Context, o Object) (spool, remote bool, err error) {
	_, serr := s.root.Stat(blobPath(o.Blob))
	spool = serr == nil
	for _, b := range []Backend{s.remote, s.peers} {
		if b == nil {
			continue
		}
		_, err := b.Stat(ctx, remoteBlob(o.Blob))
		if err == nil {
			return spool, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return spool, false, err
		}
	}
	return spool, false, nil
}
