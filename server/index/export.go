package index

import (
	"context"
	"time"
)

// Exporter is an index that can be read out whole, and Importer one that can
// take in what an Exporter gave: `attachd index copy` moves a node's SQLite
// index into the PostgreSQL index of a cluster with them (objects go through
// Walk and Tx.PutObject, locks through Locks and CreateLock). Both
// implementations are both.
type Exporter interface {
	// Dirs calls fn for every recorded folder whose key sorts after after
	// ("" for all), in key order: a folder before those below it.
	Dirs(ctx context.Context, after string, fn func(Dir) error) error
	// Deliveries calls fn for every delivery in the outbox, pending and
	// dead, whose ID is greater than after, in ID order.
	Deliveries(ctx context.Context, after int64, fn func(QueuedDelivery) error) error
}

// Importer is an index that takes in deliveries as another index held them.
type Importer interface {
	// ImportDeliveries adds ds to the outbox as they are — pending or dead,
	// their attempts, due time and last error — but not leased, and with IDs
	// of its own, in one transaction. A delivery whose sink, key and event
	// the outbox holds already is passed over, so that importing again adds
	// nothing. It returns how many were added.
	ImportDeliveries(ctx context.Context, ds []QueuedDelivery) (int64, error)
}

// QueuedDelivery is a delivery as the outbox holds it (see Exporter).
type QueuedDelivery struct {
	Delivery           // Attempts counts those made so far
	Dead     bool      // a dead letter; else pending
	Next     time.Time // when it is due
	Error    string    // why the last attempt failed
}
