package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// ReplicateSink is the outbox sink that moves spooled objects to the remote
// backend in spool mode.
const ReplicateSink = "replicate"

// Replicate moves spooled objects to the backend, and deletes there what was
// deleted here, until ctx is cancelled. Failures are retried with backoff for
// as long as it takes: an accepted upload is never dropped.
func (s *Store) Replicate(ctx context.Context) {
	changed, cancel := s.Subscribe()
	defer cancel()
	if s.replicateSink != ReplicateSink {
		// This node alone replicates its spool: what a process of it held
		// when it died is taken back now, not when the leases run out.
		if n, err := s.idx.Release(ctx, s.replicateSink); err != nil {
			s.log.Warn("replication: cannot take back the work of an earlier process; it waits for its leases", "err", err)
		} else if n > 0 {
			s.log.Info("replication: took back the work of an earlier process", "deliveries", n)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		ds, err := s.ClaimDeliveries(ctx, s.replicateSink, 16, remoteTimeout+10*time.Second)
		if err != nil {
			s.log.Error("replication: cannot read the outbox", "err", err)
		}
		if len(ds) == 0 {
			select {
			case <-ctx.Done():
			case <-changed:
			case <-tick.C:
			}
			continue
		}
		var outs []Outcome
		for i, d := range ds {
			err := s.replicate(ctx, d)
			if ctx.Err() != nil {
				// Shutting down: give back what was not done, so that the
				// next process need not wait for the leases to run out.
				for _, d := range ds[i:] {
					outs = append(outs, Outcome{ID: d.ID, Next: time.Now(), Error: "interrupted by shutdown"})
				}
				s.finishDetached(outs)
				return
			}
			if err != nil {
				wait := min(time.Second<<min(d.Attempts-1, 6), time.Minute)
				wait = time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
				s.log.Warn("replication to the backend failed; will retry", "key", UnescapeKey(d.Key), "attempt", d.Attempts, "retry_in_ms", wait.Milliseconds(), "err", err)
				outs = append(outs, Outcome{ID: d.ID, Next: time.Now().Add(wait), Error: err.Error()})
				continue
			}
			outs = append(outs, Outcome{ID: d.ID, Done: true})
		}
		if err := s.FinishDeliveries(ctx, outs); err != nil {
			s.log.Error("replication: cannot record progress; it will be repeated", "err", err)
		}
	}
}

// finishDetached records outcomes while the caller's context is cancelled.
func (s *Store) finishDetached(outs []Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.FinishDeliveries(ctx, outs); err != nil {
		s.log.Warn("could not release deliveries at shutdown; their leases will run out", "err", err)
	}
}

// replicate makes the backend match the local state of one key.
func (s *Store) replicate(ctx context.Context, d Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	// The index, not the cache: a writer updates the cache just after its
	// commit, and the delivery may be claimed in between.
	o, err := lookup(s.idx.Get(ctx, d.Key))
	switch {
	case errors.Is(err, ErrNotFound):
		// Deleted (or moved away): remove it there too.
		if err := s.remote.Delete(ctx, remoteSidecar(d.Key)); err != nil {
			return remoteErr("delete sidecar", err)
		}
		if !s.shared && !s.blobReferenced(ctx, d.Blob) {
			return remoteErr("delete blob", s.deleteRemoteBlob(ctx, d.Blob))
		}
		return nil
	case err != nil:
		return err
	}
	if _, err := s.root.Stat(blobPath(o.Blob)); err == nil {
		if err := s.pushBlob(ctx, o.Blob); err != nil {
			return err
		}
	} else if s.shared && o.Blob != d.Blob {
		// Replaced by a version another node took: that node's own
		// delivery moves it on, once its bytes are in the backend.
		return nil
	} else if _, err := s.remote.Stat(ctx, remoteBlob(o.Blob)); errors.Is(err, ErrNotFound) && s.peers != nil {
		// In another node's spool: any node may move it on.
		if err := s.pushFromPeer(ctx, o.Blob, o.Size); err != nil {
			return err
		}
	} else if err != nil {
		return remoteErr("find blob", err) // neither here nor there: retry, and say so
	}
	if err := s.pushSidecar(ctx, o); err != nil {
		return err
	}
	if d.PrevBlob != "" && d.PrevBlob != o.Blob && !s.shared && !s.blobReferenced(ctx, d.PrevBlob) {
		if err := s.deleteRemoteBlob(ctx, d.PrevBlob); err != nil {
			return remoteErr("delete replaced blob", err)
		}
	}
	s.evictIfCurrent(ctx, o)
	return nil
}

// evictIfCurrent removes the spooled copy once the backend has it, unless a
// newer version took its place meanwhile (which evicts itself later).
func (s *Store) evictIfCurrent(ctx context.Context, o Object) {
	mu := s.stripe(o.Key)
	mu.Lock()
	defer mu.Unlock()
	if cur, err := s.get(ctx, o.Key); err == nil && cur.Blob == o.Blob {
		s.retire(o.Blob, o.Size)
	}
}
