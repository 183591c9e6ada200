// Package index defines what attachd's store asks of its index: the
// queryable record of objects and folders, WebDAV dead properties and locks,
// and the outbox of deliveries. The store speaks only this interface, so
// that the embedded SQLite index (package sqlite) and a shared database can
// stand behind it; indextest holds the behaviour every implementation must
// show.
//
// The index is a cache of the data directory's objects tree (design
// invariant 5): everything in it but locks and deliveries can be rebuilt
// from there, in one transaction (Tx.ClearObjects, Tx.PruneDirs).
//
// Keys are the store's canonical keys: segments joined by '/', no leading or
// trailing '/', "" for the root folder. The index compares them as byte
// strings; it never escapes or unescapes them.
package index

import (
	"context"
	"errors"
	"time"
)

// Errors an implementation returns, which the store maps to its own.
var (
	ErrNotFound = errors.New("not found")
	ErrLocked   = errors.New("locked")
	// ErrFull is a write refused because the index's disk is full.
	ErrFull = errors.New("index full")
	// ErrCorrupt is an index that failed its integrity check when opened:
	// it must be set aside and rebuilt from the objects tree.
	ErrCorrupt = errors.New("index failed its integrity check")
	// ErrUnavailable is an index that cannot be reached: its server refused
	// or dropped the connection, or did not answer in time. The change or
	// read may succeed later; nothing is wrong with the index itself.
	ErrUnavailable = errors.New("index unavailable")
)

// Index is the store's index. Its methods are safe for concurrent use. Reads
// see every Update that returned before they began.
type Index interface {
	// Get returns the object at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Object, error)
	// Longest returns the object with the longest key among keys, or ErrNotFound.
	Longest(ctx context.Context, keys []string) (Object, error)
	// ByID returns the object whose MediaID or DocID is id, preferring one
	// below the folder under, then the most recently updated; or ErrNotFound.
	ByID(ctx context.Context, id, under string) (Object, error)
	// BlobInUse reports whether any object names blob (copies share blobs).
	BlobInUse(ctx context.Context, blob string) (bool, error)
	// BlobsInUse returns which of blobs some object names, in one query.
	BlobsInUse(ctx context.Context, blobs []string) (map[string]bool, error)
	// Dir returns the folder at key, or ErrNotFound. The root ("") has no record.
	Dir(ctx context.Context, key string) (Dir, error)
	// List calls fn for each child of the folder parent: folders first, then
	// objects, each group in key order. fields says what objects carry.
	List(ctx context.Context, parent string, fields Fields, fn func(Entry) error) error
	// Walk calls fn for every object below the folder prefix ("" for all),
	// in key order.
	Walk(ctx context.Context, prefix string, fn func(Object) error) error
	// Usage returns the total Size and the number of the objects Walk
	// would visit below the folder prefix ("" for all).
	Usage(ctx context.Context, prefix string) (bytes, objects int64, err error)
	// TrackUsage keeps the usage of the folders prefixes up to date in the
	// index as it changes, in each change's own transaction, so that
	// Usage of one of them is one row rather than a read of every object
	// below it; it stops keeping any other folder's. Usage is exact either
	// way.
	TrackUsage(ctx context.Context, prefixes []string) error
	// Search returns the objects q selects, newest first (see Query), in
	// one read of the derived columns: no object's metadata is parsed.
	Search(ctx context.Context, q Query) ([]Hit, error)
	// Groups returns the accounts of the objects below the folder under,
	// or, with account set, that account's mailboxes, in value order.
	Groups(ctx context.Context, under, account string) ([]Group, error)

	// Update runs fn in one write transaction, committed if fn returns nil
	// and rolled back otherwise; fn's error is returned as it is. ctx's
	// cancellation does not reach the transaction: a change whose sidecar
	// is in place must reach the index too.
	Update(ctx context.Context, fn func(Tx) error) error

	// Locks returns the locks live at now that cover key, and with below
	// also those on keys below it.
	Locks(ctx context.Context, key string, below bool, now time.Time) ([]Lock, error)
	// LockByToken returns the lock with token live at now, or ErrNotFound.
	LockByToken(ctx context.Context, token string, now time.Time) (Lock, error)
	// CreateLock records l unless a lock live at now conflicts with it (a
	// *LockedError): an exclusive lock conflicts with any other on the same
	// resources, a shared one only with exclusive ones (RFC 4918 §6.2).
	// Expired locks are purged on the way.
	CreateLock(ctx context.Context, l Lock, now time.Time) error
	// RefreshLock sets a new expiry on the lock with token live at now.
	RefreshLock(ctx context.Context, token string, expires, now time.Time) (Lock, error)
	// Unlock removes the lock with token live at now, or returns ErrNotFound.
	Unlock(ctx context.Context, token string, now time.Time) error
	// ReleaseLocks removes the locks on key and on every key below it.
	ReleaseLocks(ctx context.Context, key string) error

	// Claim leases up to limit deliveries of sink due at now and not leased,
	// for lease, and counts the attempt: the deliveries returned carry it.
	Claim(ctx context.Context, sink string, limit int, lease time.Duration, now time.Time) ([]Delivery, error)
	// Finish records the outcomes of attempts, in one transaction.
	Finish(ctx context.Context, outs []Outcome) error
	// Requeue makes dead letters pending again, due at now with their
	// attempts reset: those of sink ("" for every sink) and, if eventID is
	// not "", only that event. It returns how many.
	Requeue(ctx context.Context, sink, eventID string, now time.Time) (int64, error)
	// Release ends the leases on sink's pending deliveries, so that they can
	// be claimed at once. It is for a consumer that alone claims sink (a
	// node's own replication) and has just started: what it held before
	// it died need not wait for the leases to run out. It returns how many.
	Release(ctx context.Context, sink string) (int64, error)
	// OutboxStats returns the queue of every sink that has deliveries, by sink.
	OutboxStats(ctx context.Context) ([]SinkStats, error)
	// Subscribe returns a channel that receives after a transaction that
	// queued deliveries commits, and a func that ends the subscription.
	// Each subscriber is woken on its own; wake-ups that find the channel
	// full are merged.
	Subscribe() (<-chan struct{}, func())

	// Watch returns a Watcher over the index's commits.
	Watch() Watcher
	// Check reports whether the index is in place and answers.
	Check(ctx context.Context) error
	Close() error
}

// Tx is one write transaction (see Index.Update). Its reads see its own writes.
type Tx interface {
	// Get is Index.Get inside the transaction. Writers are serialized, so
	// the row it returns is the one this transaction replaces, whatever
	// other processes sharing the index do meanwhile.
	Get(key string) (Object, error)
	// KeptUsage is Index.Usage inside the transaction of a folder whose
	// usage the index keeps (TrackUsage), or ErrNotFound for any other: it
	// reads one row, never the objects below a folder, which would hold up
	// every writer. It counts the transaction's own changes and, writers
	// being serialized, every other committed one.
	KeptUsage(prefix string) (bytes, objects int64, err error)
	// PutObject inserts or replaces the object at o.Key, and records its
	// parent folders (PutDirs).
	PutObject(o Object) error
	// SwapObject is Get and PutObject in one step, which a shared index
	// answers in one round trip: it returns the object that o replaced, and
	// found false if o.Key had none.
	SwapObject(o Object) (old Object, found bool, err error)
	// CreateObject is PutObject for a key believed new: if o.Key has an
	// object already, it changes nothing and returns false. It spares a
	// store of a new key the Get that PutObject's caller needs to learn
	// what it replaces.
	CreateObject(o Object) (bool, error)
	// DeleteObject removes the object at key, if there is one.
	DeleteObject(key string) error
	// PutDirs records the folder key and its parents that are not recorded
	// yet, created at t: a key implies its folders.
	PutDirs(key string, t time.Time) error
	// UpdateDir sets the dead properties and modification time of the
	// recorded folder d.Key.
	UpdateDir(d Dir) error
	// DeleteTree removes the folder key, every folder below it and every
	// object below it.
	DeleteTree(key string) error
	// MoveTree renames the folder src, and every folder and object below
	// it, to dst, which must not exist.
	MoveTree(src, dst string) error
	// ClearObjects removes every object; with PruneDirs it begins a rebuild.
	ClearObjects() error
	// PruneDirs removes every folder whose key keep refuses.
	PruneDirs(keep func(key string) bool) error
	// Walk is Index.Walk inside the transaction. It reads the objects a
	// page at a time and calls fn between the reads, so fn may write in the
	// same transaction, and a folder of any size costs one page of memory.
	// fn must not change the keys still to come.
	Walk(prefix string, fn func(Object) error) error
	// Enqueue queues d for d.Sink, due at d.Occurred, and gives it an
	// EventID if it has none. An "updated" delivery replaces the pending
	// ones of the same sink and key that no dispatcher holds (unless they
	// say "deleted"), and takes the type "created" if the one it replaced
	// had it: quick successive versions coalesce into one event.
	Enqueue(d Delivery) error
}

// Watcher tells when anything was committed to the index: the WebDAV front
// end caches listings until then. It must be closed.
type Watcher interface {
	// Version returns a number that changes when another connection or
	// process commits.
	Version(ctx context.Context) (int64, error)
	Close() error
}
