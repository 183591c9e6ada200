package store

import (
	"context"

	"github.com/attachd/attachd/server/index"
)

// writes is where a change's bytes and record go beyond the data directory,
// chosen once at Open from Options.Remote and Options.Through:
//
//   - localWrites: nowhere; the data directory holds everything.
//   - spoolWrites: a change commits locally and queues a delivery for the
//     replicator (sink ReplicateSink), which moves it to the backend.
//   - throughWrites: the backend has a store's bytes and sidecar before the
//     local commit, so that the client hears 201 only once it does.
//
// The commit protocol (commit.go) calls it at fixed points and is otherwise
// the same for all three.
type writes interface {
	// sinks returns the outbox sinks of every change: the configured ones,
	// and the strategy's own.
	sinks(configured []string) []string
	// beforeCommit runs before the sidecar of o is placed; its error
	// refuses the store.
	beforeCommit(ctx context.Context, o Object) error
	// failedCommit runs when the store of o over old failed after
	// beforeCommit succeeded, with the store's error.
	failedCommit(ctx context.Context, o, old Object, err error)
	// committed runs once o has replaced old (old.Blob is "" if o is new),
	// before the local blob of old is removed.
	committed(ctx context.Context, o, old Object)
	// updating runs inside the index transaction of a metadata update of o.
	updating(ctx context.Context, tx index.Tx, o Object) error
	// updated runs once a metadata update of o is committed.
	updated(ctx context.Context, o Object)
	// deleted runs once o is deleted and its local blob removed.
	deleted(ctx context.Context, o Object)
}

// newWrites returns the strategy that opts ask for.
func newWrites(s *Store, opts Options) writes {
	switch {
	case opts.Remote == nil:
		return localWrites{}
	case opts.Through:
		return throughWrites{s: s}
	default:
		return spoolWrites{s: s}
	}
}

// localWrites keeps everything in the data directory: it does nothing.
type localWrites struct{}

func (localWrites) sinks(configured []string) []string                  { return configured }
func (localWrites) beforeCommit(context.Context, Object) error          { return nil }
func (localWrites) failedCommit(context.Context, Object, Object, error) {}
func (localWrites) committed(context.Context, Object, Object)           {}
func (localWrites) updating(context.Context, index.Tx, Object) error    { return nil }
func (localWrites) updated(context.Context, Object)                     {}
func (localWrites) deleted(context.Context, Object)                     {}

// spoolWrites commits to the local spool; the replicator (Store.Replicate)
// follows every change, deletes included, through its own outbox sink.
type spoolWrites struct {
	localWrites
	s *Store
}

func (w spoolWrites) sinks(configured []string) []string {
	return append(configured[:len(configured):len(configured)], w.s.replicateSink)
}

// updating queues the update for the replicator only: hooks are not told of
// metadata changes, but the backend's sidecar must follow them.
func (w spoolWrites) updating(ctx context.Context, tx index.Tx, o Object) error {
	return w.s.enqueueTo(ctx, tx, []string{w.s.replicateSink}, ChangeUpdated, o)
}

// throughWrites writes to the backend before the local commit, and keeps no
// local copy of the bytes once committed.
type throughWrites struct{ s *Store }

func (w throughWrites) sinks(configured []string) []string { return configured }

func (w throughWrites) beforeCommit(ctx context.Context, o Object) error {
	return w.s.pushThrough(ctx, o)
}

// failedCommit puts the backend back as it was, unless the change is in
// doubt: then the new version stands on disk and wins at the next start, so
// the backend must keep it too.
func (w throughWrites) failedCommit(ctx context.Context, o, old Object, err error) {
	if !isInDoubt(err) {
		w.s.undoThrough(ctx, o, old)
	}
}

func (w throughWrites) committed(ctx context.Context, o, old Object) {
	s := w.s
	s.retire(o.Blob, o.Size)
	if old.Blob != "" && old.Blob != o.Blob && !s.shared && !s.blobReferenced(ctx, old.Blob) {
		if err := s.deleteRemoteBlob(ctx, old.Blob); err != nil {
			s.log.Warn("could not delete a replaced blob in the backend", "blob", old.Blob, "err", err)
		}
	}
}

func (w throughWrites) updating(context.Context, index.Tx, Object) error { return nil }

func (w throughWrites) updated(ctx context.Context, o Object) {
	if err := w.s.pushSidecar(ctx, o); err != nil {
		w.s.log.Warn("could not update the sidecar in the backend", "key", UnescapeKey(o.Key), "err", err)
	}
}

func (w throughWrites) deleted(ctx context.Context, o Object) {
	s := w.s
	if err := s.remote.Delete(ctx, remoteSidecar(o.Key)); err != nil {
		s.log.Warn("could not delete the sidecar in the backend", "key", UnescapeKey(o.Key), "err", err)
	} else if !s.shared && !s.blobReferenced(ctx, o.Blob) {
		s.deleteRemoteBlob(ctx, o.Blob) // with a shared index, after the grace (gc.go)
	}
}
