package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attachd/attachd/server/store/readcache"
)

// With a remote backend, this node may keep copies of blobs for reads
// (Options.ReadCache, package readcache): the spooled bytes of a store,
// once the backend holds them, and the bytes of a blob read whole from
// elsewhere. A copy is only ever read for the blob it is named by, which
// is immutable, so it needs no invalidation; copies of blobs no object
// names any more are removed when this node deletes them from the backend
// and, for what other nodes delete, by SweepReadCache.

// openCopies opens the read cache in data_dir/cache, or, without one,
// removes what an earlier configuration kept there: copies that nothing
// would remove once their objects are deleted. A cache that cannot be
// opened is logged and done without; reads then go to the backend.
func (s *Store) openCopies() error {
	dir := filepath.Join(s.dir, "cache")
	if s.remote == nil || s.readCacheSize <= 0 {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove the read cache of an earlier configuration: %w", err)
		}
		return nil
	}
	c, err := readcache.Open(dir, s.readCacheSize, s.log)
	if err != nil {
		s.log.Warn("running without a read cache: every read goes to the backend", "err", err)
		return nil
	}
	s.copies = c
	return nil
}

// openCopy opens this node's copy of o's blob, if it keeps one.
func (s *Store) openCopy(o Object) (ReadSeekCloser, bool) {
	if s.copies == nil {
		return nil, false
	}
	if f, ok := s.copies.Open(o.Blob); ok {
		return f, true
	}
	return nil, false
}

// copying has a read of o's blob from elsewhere leave a copy, if it reads
// every byte in order.
func (s *Store) copying(r ReadSeekCloser, o Object) ReadSeekCloser {
	rr, ok := r.(*remoteReader)
	if !ok || s.copies == nil {
		return r
	}
	fill := s.copies.Fill(o.Blob, o.Size, o.SHA256)
	if fill == nil {
		return r
	}
	return &fillingReader{remoteReader: rr, fill: fill, s: s}
}

// retire takes the spooled bytes of a blob that the backend now holds out
// of the spool: into the read cache, or away.
func (s *Store) retire(blob string, size int64) {
	if s.copies != nil && s.copies.Adopt(blob, filepath.Join(s.dir, blobPath(blob)), size) {
		return
	}
	s.evict(blob)
}

// deleteRemoteBlob deletes a blob that no object names from the backend,
// and this node's copy of it.
func (s *Store) deleteRemoteBlob(ctx context.Context, blob string) error {
	if s.copies != nil {
		s.copies.Remove(blob)
	}
	return s.remote.Delete(ctx, remoteBlob(blob))
}

// fillingReader is a remoteReader that writes what it reads into a copy
// while the reads run from the start without a gap.
type fillingReader struct {
	*remoteReader
	s    *Store
	fill *readcache.Filler
}

func (r *fillingReader) Read(p []byte) (int, error) {
	at := r.pos
	n, err := r.remoteReader.Read(p)
	if r.fill == nil || n == 0 {
		return n, err
	}
	switch {
	case at != r.fill.Written():
		r.fill.Abort() // a seek: the reader wants part of the blob
		r.fill = nil
	case r.fill.Write(p[:n]) != nil:
		r.fill = nil
	case r.fill.Written() == r.size:
		if ferr := r.fill.Finish(); ferr != nil {
			r.s.log.Warn("read cache: not keeping a copy of a blob read from the backend", "blob", strings.TrimPrefix(r.name, remoteBlob("")), "err", ferr)
		}
		r.fill = nil
	}
	return n, err
}

func (r *fillingReader) Close() error {
	if r.fill != nil {
		r.fill.Abort()
		r.fill = nil
	}
	return r.remoteReader.Close()
}

// SweepReadCache removes, at once and then every blob grace until ctx
// ends, the copies of blobs that no object names any more: those another
// node deleted, or a command while the server was stopped, or this node
// while a read was filling a copy. The backend keeps such a blob for the
// grace too (gc.go), so a deleted object's bytes leave this node about
// when they leave the backend.
func (s *Store) SweepReadCache(ctx context.Context) {
	if s.copies == nil {
		return
	}
	every := s.blobGrace
	if every <= 0 {
		every = 10 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.sweepCopies(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("read cache: cannot check its copies against the index; trying again later", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepCopies removes the copies of blobs that no object names.
func (s *Store) sweepCopies(ctx context.Context) (removed int, err error) {
	gone, err := s.unnamed(ctx, s.copies.Names())
	for _, blob := range gone {
		s.copies.Remove(blob)
	}
	return len(gone), err
}

// ReadCacheStats returns the read cache's counters; ok is false without one.
func (s *Store) ReadCacheStats() (st readcache.Stats, ok bool) {
	if s.copies == nil {
		return st, false
	}
	return s.copies.Stats(), true
}
