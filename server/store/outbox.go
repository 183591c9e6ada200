package store

import (
	"context"
	"fmt"
	"time"

	"github.com/attachd/attachd/server/index"
)

// The outbox holds one delivery per change and subscriber (a hook, or the
// replication to a remote backend). Deliveries are queued in the same index
// transaction as the change itself (docs/design.md, invariant 6), so a change that is
// visible has its deliveries queued, whatever happens next.

// Change types, as hooks name them.
const (
	ChangeCreated = index.ChangeCreated
	ChangeUpdated = index.ChangeUpdated
	ChangeDeleted = index.ChangeDeleted
)

type (
	// Delivery is one queued delivery of a change to a sink.
	Delivery = index.Delivery
	// Outcome is what became of one delivery attempt.
	Outcome = index.Outcome
	// SinkStats is the state of one sink's queue.
	SinkStats = index.SinkStats
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the request making a change,
// which the change's deliveries carry on to their hooks.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

type reasonKey struct{}

// WithReason returns ctx carrying why a change is made when no client asked
// for it ("retention"); the change's deliveries carry it on to their hooks
// as the event's "reason".
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

// Reason returns the reason set by WithReason, or "".
func Reason(ctx context.Context) string {
	r, _ := ctx.Value(reasonKey{}).(string)
	return r
}

// enqueue queues one delivery per sink for a change of o, in tx. Quick
// successive versions coalesce (see index.Tx.Enqueue).
func (s *Store) enqueue(ctx context.Context, tx index.Tx, typ string, o Object, prevBlob ...string) error {
	return s.enqueueTo(ctx, tx, s.sinks, typ, o, prevBlob...)
}

func (s *Store) enqueueTo(ctx context.Context, tx index.Tx, sinks []string, typ string, o Object, prevBlob ...string) error {
	d := Delivery{Type: typ, Key: o.Key, Blob: o.Blob, SHA256: o.SHA256, Size: o.Size, ContentType: o.ContentType,
		DocID: o.DocID, MediaID: o.MediaID, RequestID: RequestID(ctx), Reason: Reason(ctx), Occurred: time.Now()}
	if len(prevBlob) > 0 {
		d.PrevBlob = prevBlob[0]
	}
	for _, sink := range sinks {
		d.Sink = sink
		if err := tx.Enqueue(d); err != nil {
			return err
		}
	}
	return nil
}

// enqueueTree queues a change of every object below the folder dir.
func (s *Store) enqueueTree(ctx context.Context, tx index.Tx, typ, dir string) error {
	if len(s.sinks) == 0 {
		return nil
	}
	return tx.Walk(dir, func(o Object) error { return s.enqueue(ctx, tx, typ, o) })
}

// Subscribe returns a channel that receives when deliveries were queued, and
// a func that ends the subscription. Each subscriber is woken on its own:
// the hook dispatcher and the replicator do not take each other's wake-ups.
func (s *Store) Subscribe() (<-chan struct{}, func()) { return s.idx.Subscribe() }

// ClaimDeliveries leases up to limit due deliveries of sink for lease, and
// counts the attempt. A dispatcher that dies holding them lets the lease run
// out, and they are claimed again: delivery is at least once.
func (s *Store) ClaimDeliveries(ctx context.Context, sink string, limit int, lease time.Duration) ([]Delivery, error) {
	return s.idx.Claim(ctx, sink, limit, lease, time.Now())
}

// FinishDeliveries records the outcomes of attempts, in one transaction.
func (s *Store) FinishDeliveries(ctx context.Context, outs []Outcome) error {
	return s.idx.Finish(ctx, outs)
}

// OutboxStats returns the queue of every sink that has deliveries.
func (s *Store) OutboxStats(ctx context.Context) ([]SinkStats, error) { return s.idx.OutboxStats(ctx) }

// Outbox reads and repairs the delivery queue of a data directory from
// outside the server (attachd hooks status, attachd hooks retry). It opens
// only the index, which SQLite lets two processes share.
type Outbox struct{ idx index.Index }

// OpenOutbox opens the outbox of the data directory dir, or, if indexURL is
// set, of the PostgreSQL index a cluster shares.
func OpenOutbox(dir, indexURL string) (*Outbox, error) {
	idx, err := openSharedIndex(dir, indexURL)
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	return &Outbox{idx: idx}, nil
}

// Close closes the outbox.
func (o *Outbox) Close() error { return o.idx.Close() }

// Stats returns the queue of every sink that has deliveries.
func (o *Outbox) Stats(ctx context.Context) ([]SinkStats, error) { return o.idx.OutboxStats(ctx) }

// WalkObjects calls fn with every object at or below prefix, as
// Store.WalkObjects does (attachd retention plan, beside a running server).
func (o *Outbox) WalkObjects(ctx context.Context, prefix string, fn func(Object) error) error {
	return readErr(o.idx.Walk(ctx, prefix, fn))
}

// StatDir returns the folder at key, as Store.StatDir does (attachd
// retention plan reads the holds set on folders).
func (o *Outbox) StatDir(ctx context.Context, key string) (Dir, error) {
	if key == "" {
		return Dir{}, nil
	}
	return lookup(o.idx.Dir(ctx, key))
}

// Requeue makes dead letters pending again, with their attempts reset: those
// of sink ("" for every sink) and, if eventID is not "", only that event.
func (o *Outbox) Requeue(ctx context.Context, sink, eventID string) (int64, error) {
	return o.idx.Requeue(ctx, sink, eventID, time.Now())
}
