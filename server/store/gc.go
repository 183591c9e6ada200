package store

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/attachd/attachd/server/index"
)

// GCSink is the outbox sink of the blobs that a change left unnamed, with a
// shared index. Blobs are immutable, and a node streaming one to a client
// read its name from the index before the change: removing it at once would
// cut that body short. So the change queues its old blob here, due after
// the grace period, in its own transaction; any node then removes it from
// the backend if no object names it by then.
const GCSink = "blobgc"

// collectLater queues blob for removal after the grace period, in tx. It
// does nothing without a shared index: one node knows its own readers, and
// removes blobs at once (see writes.go).
func (s *Store) collectLater(tx index.Tx, key, blob string) error {
	if !s.shared || blob == "" {
		return nil
	}
	return tx.Enqueue(Delivery{Sink: GCSink, Type: ChangeDeleted, Key: key, Blob: blob,
		Occurred: time.Now().Add(s.blobGrace)})
}

// CollectBlobs removes from the backend the blobs queued by collectLater
// once they are due and no object names them, until ctx is cancelled. Any
// node may run it: deliveries are leased, so no two nodes take the same one.
// Without a shared index it returns at once.
func (s *Store) CollectBlobs(ctx context.Context) {
	if !s.shared {
		return
	}
	tick := time.NewTicker(s.blobGrace / 10)
	defer tick.Stop()
	for ctx.Err() == nil {
		ds, err := s.ClaimDeliveries(ctx, GCSink, 64, remoteTimeout+10*time.Second)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("blob collection: cannot read the outbox", "err", err)
		}
		if len(ds) == 0 {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			continue
		}
		outs := make([]Outcome, 0, len(ds))
		for _, d := range ds {
			if err := s.collect(ctx, d.Blob); err != nil {
				outs = append(outs, Outcome{ID: d.ID, Next: time.Now().Add(time.Minute), Error: err.Error()})
				continue
			}
			outs = append(outs, Outcome{ID: d.ID, Done: true})
		}
		if err := s.FinishDeliveries(context.WithoutCancel(ctx), outs); err != nil {
			s.log.Warn("blob collection: cannot record progress; it will be repeated", "err", err)
		}
	}
}

// collect removes blob from the backend and from the spool if no object
// names it.
func (s *Store) collect(ctx context.Context, blob string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	used, err := s.idx.BlobInUse(ctx, blob)
	if err != nil || used {
		return readErr(err)
	}
	s.evict(blob)
	return remoteErr("delete blob", s.deleteRemoteBlob(ctx, blob))
}

// unnamed returns the blobs of names that no object names, asking the
// index about a thousand at a time. On an error it returns those found so
// far.
func (s *Store) unnamed(ctx context.Context, names []string) (gone []string, err error) {
	for len(names) > 0 {
		batch := names[:min(len(names), 1000)]
		names = names[len(batch):]
		used, err := s.idx.BlobsInUse(ctx, batch)
		if err != nil {
			return gone, readErr(err)
		}
		for _, blob := range batch {
			if !used[blob] {
				gone = append(gone, blob)
			}
		}
	}
	return gone, nil
}

// sweepSpool removes the blobs of this node's spool that no object names:
// with a shared index there is no local reconciliation to find them, and a
// process that died mid-store leaves the blob of a store never committed.
func (s *Store) sweepSpool(ctx context.Context) error {
	removed := 0
	for i := 0; i < 256; i++ {
		dir := fmt.Sprintf("blobs/%02x", i)
		entries, err := fs.ReadDir(s.root.FS(), dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		if len(entries) == 0 {
			continue
		}
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		gone, err := s.unnamed(ctx, names)
		if err != nil {
			return err
		}
		for _, name := range gone {
			if s.root.Remove(dir+"/"+name) == nil {
				removed++
			}
		}
	}
	if removed > 0 {
		s.log.Info("removed spooled blobs of stores that never committed", "count", removed)
	}
	return nil
}
