// Package store keeps attachd's objects: bytes in immutable blob files, each
// object's record (its metadata sidecar) in a tree that mirrors the keys, and an
// index over the records (package index; SQLite in the data directory).
//
// On disk, below the data directory:
//
//	blobs/xx/<version>   the bytes of one version of one object, never modified
//	objects/<key>        the object's sidecar: JSON naming its blob, size, SHA-256, metadata
//	tmp/                 uploads in flight; emptied at start-up
//	index.db             the index; rebuildable from objects/ (attachd reindex)
//
// The rename of a sidecar into objects/ is the commit point of a store: the
// blob it names was fsync'd before it, so an object is either wholly there or
// not there at all, whatever moment the process or the machine dies.
package store

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/store/readcache"
)

// Errors a front end maps to status codes.
var (
	ErrNotFound  = blob.ErrNotFound // backends return it too
	ErrExists    = errors.New("already exists")
	ErrConflict  = errors.New("conflicts with an existing object or folder")
	ErrTooLarge  = errors.New("body larger than the configured maximum")
	ErrShortBody = errors.New("body shorter than its declared length")
	ErrNoSpace   = errors.New("no space left on the data disk")
	ErrNotEmpty  = errors.New("folder not empty")
)

// Object is one stored object as the index knows it; its Key is canonical
// (see CanonicalPath).
type Object = index.Object

// Options configure a Store.
type Options struct {
	MaxSize int64        // largest object accepted; 0 means no limit
	Logger  *slog.Logger // nil: slog.Default()
	// Sinks subscribe to changes: each change of an object queues one
	// delivery per sink in the outbox (hooks: "hook:NAME").
	Sinks []string
	// Remote, if set, is where object bytes live; the data directory then
	// holds the index, the sidecars and the spool.
	Remote Backend
	// Through makes stores write through to Remote before they commit;
	// otherwise they commit to the local spool and Replicate moves them on.
	Through bool
	// Peers, in a cluster, reads the blobs that other nodes hold in their
	// spools (read-only: Stat and Open). See peers.go.
	Peers Backend
	// IndexURL, if set, is a PostgreSQL index that every node of a cluster
	// shares (docs/cluster.md); empty is the SQLite index in the data
	// directory. A shared index needs Remote.
	IndexURL string
	// Node names this node in a cluster: its spool's replication is its own
	// outbox sink. Empty outside a cluster.
	Node string
	// BlobGrace, with a shared index, is how long a blob no object names
	// any more stays in the backend, so that reads already streaming it on
	// other nodes finish (default 10 minutes).
	BlobGrace time.Duration
	// Quotas limit the bytes and objects below folders (quota.go).
	Quotas []Quota
	// ReadCache, with Remote, bounds the bytes of the blob copies this node
	// keeps for reads in its data directory (cache/; readcache.go); 0 keeps
	// none.
	ReadCache int64
}

// Store is the object store over one data directory. It is safe for
// concurrent use.
type Store struct {
	dir     string
	root    *os.Root
	lock    *os.File // flock'd: one process per data directory
	idx     index.Index
	log     *slog.Logger
	maxSize int64
	sinks   []string
	cache   cache
	// dirs remembers folders known to exist, on disk and in the index, so
	// that a store into a known folder skips the checks that it is one.
	// Only folder deletes and moves, under the tree lock, forget them.
	dirs sync.Map
	// shardDirs (blobs/xx) and tmpDir (tmp/) are held open for the
	// renames and fsyncs of a commit and for reads (dirfd.go); top, the
	// data directory, for lookups below it (nil without openat2).
	shardDirs [256]*dirFD
	tmpDir    *dirFD
	top       *dirFD
	// remote, if set, is where object bytes live once they leave the spool;
	// reads look there for what is not here.
	remote Backend
	peers  Backend // the other nodes' spools, in a cluster; or nil
	writes writes  // how changes reach remote
	// copies holds local copies of remote blobs for reads; nil if none.
	copies        *readcache.Cache
	readCacheSize int64
	// shared is an index that other nodes write too (Options.IndexURL):
	// the index is then the only record, nothing read from it is kept in
	// memory, and replaced blobs leave the backend after blobGrace.
	shared        bool
	indexURL      string
	blobGrace     time.Duration
	replicateSink string
	quotas        []Quota
	// inDoubt is set when a change failed in a way that left the objects
	// tree ahead of the index; the next start must reconcile them.
	inDoubt atomic.Bool

	tree    sync.RWMutex    // held exclusively by folder moves and deletes
	stripes [256]sync.Mutex // per-key commit locks, by hash of the key
	bufs    sync.Pool
}

const bufSize = 256 << 10

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) stripe(key string) *sync.Mutex {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &s.stripes[h%uint32(len(s.stripes))]
}

// Trim gives back memory the index keeps only for speed, if it can: the
// server calls it when requests stop. It returns nothing: a failure costs
// only that memory.
func (s *Store) Trim(ctx context.Context) {
	if x, ok := s.idx.(interface{ ShrinkMemory(context.Context) error }); ok {
		x.ShrinkMemory(ctx)
	}
}
