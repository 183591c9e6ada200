// Package store keeps attachd's objects: bytes in immutable blob files, each
// object's record (its metadata sidecar) in a tree that mirrors the keys, and an
// embedded SQLite index over the records.
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
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/server/index"
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
	dirs    sync.Map
	shards  [256]*os.Root // blobs/xx, for reads
	remote  Backend
	through bool
	// inDoubt is set when a change failed in a way that left the objects
	// tree ahead of the index; the next start must reconcile them.
	inDoubt atomic.Bool

	tree    sync.RWMutex    // held exclusively by folder moves and deletes
	stripes [256]sync.Mutex // per-key commit locks, by hash of the key
	bufs    sync.Pool
}

const bufSize = 256 << 10

// Open opens (creating if needed) the data directory dir. It takes an
// exclusive lock on it, removes uploads left by a previous process, and
// reconciles the index with the objects tree if that process did not stop
// cleanly.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	s := &Store{dir: dir, root: root, log: opts.Logger, maxSize: opts.MaxSize, sinks: opts.Sinks,
		remote: opts.Remote, through: opts.Through}
	if s.remote != nil && !s.through {
		s.sinks = append(slices.Clone(s.sinks), ReplicateSink)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	lock, err := s.root.OpenFile("lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	s.lock = lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(io.LimitReader(lock, 32))
		return fmt.Errorf("data directory %s is in use by another attachd (pid %s)", s.dir, pid)
	}
	lock.Truncate(0)
	lock.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)

	for _, d := range []string{"objects", "blobs", "tmp"} {
		if err := s.root.Mkdir(d, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for i := 0; i < 256; i++ {
		d := fmt.Sprintf("blobs/%02x", i)
		if err := s.root.Mkdir(d, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", d, err)
		}
		// Reads open a blob with one openat in its shard, not a walk from
		// the top of the data directory.
		shard, err := s.root.OpenRoot(d)
		if err != nil {
			return fmt.Errorf("open %s: %w", d, err)
		}
		s.shards[i] = shard
	}
	if err := s.sweepTemp(); err != nil {
		return err
	}
	idx, fresh, err := s.openCheckedIndex()
	if err != nil {
		return err
	}
	s.idx = idx
	_, cleanErr := s.root.Stat("clean-shutdown")
	if fresh || cleanErr != nil {
		// The index may lag the objects tree by the stores that were between
		// their sidecar rename and their index commit when the process died.
		start := time.Now()
		n, err := s.rebuild(context.Background())
		if err != nil {
			return fmt.Errorf("reconcile index after unclean stop: %w", err)
		}
		if n > 0 || !fresh {
			s.log.Info("index reconciled with the data directory", "objects", n, "duration", time.Since(start))
		}
	}
	if err := s.root.Remove("clean-shutdown"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove clean-shutdown marker: %w", err)
	}
	return s.syncDir(".")
}

// Close closes the index, marks the data directory as cleanly stopped and
// releases it. Uploads still in flight must have finished.
func (s *Store) Close() error {
	var errs []error
	if s.idx != nil {
		if err := s.idx.Close(); err != nil {
			errs = append(errs, err)
		} else if s.inDoubt.Load() {
			s.log.Warn("not marking the data directory clean: a change is in doubt; the next start reconciles it")
		} else if err := s.root.WriteFile("clean-shutdown", nil, 0o640); err != nil {
			errs = append(errs, fmt.Errorf("write clean-shutdown marker: %w", err))
		} else {
			errs = append(errs, s.syncDir("."))
		}
		s.idx = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	for i, sh := range s.shards {
		if sh != nil {
			errs = append(errs, sh.Close())
			s.shards[i] = nil
		}
	}
	errs = append(errs, s.root.Close())
	return errors.Join(errs...)
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) sweepTemp() error {
	entries, err := fs.ReadDir(s.root.FS(), "tmp")
	if err != nil {
		return fmt.Errorf("read tmp: %w", err)
	}
	for _, e := range entries {
		if err := s.root.RemoveAll("tmp/" + e.Name()); err != nil {
			return fmt.Errorf("remove stale upload: %w", err)
		}
	}
	if len(entries) > 0 {
		s.log.Info("removed uploads left by an earlier process", "count", len(entries))
	}
	return nil
}

func (s *Store) syncDir(name string) error {
	d, err := s.root.Open(name)
	if err != nil {
		return fmt.Errorf("open %s for fsync: %w", name, err)
	}
	defer d.Close()
	if err := fsync(d); err != nil {
		return fmt.Errorf("fsync %s: %w", name, mapErr(err))
	}
	return nil
}

// fsync makes a file or folder durable. Benchmarks swap it out to measure
// what durability costs; nothing else does.
var fsync = (*os.File).Sync

func newVersion() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func blobPath(blob string) string { return "blobs/" + blob[:2] + "/" + blob }

// mapErr turns filesystem errors that a client can cause or must hear about
// into the store's errors.
// The errors it maps carry the system's reason but not the file's path:
// their text reaches clients, and paths inside the data directory are not
// theirs to know (docs/security.md).
func mapErr(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		sentinel = ErrNoSpace
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		sentinel = ErrConflict
	case errors.Is(err, syscall.ENAMETOOLONG):
		sentinel = ErrInvalidKey
	default:
		return err
	}
	if errors.Is(err, sentinel) {
		return err // mapped already
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("%w (%v)", sentinel, errno)
	}
	return sentinel
}

// Upload is a new object's bytes on their way to the disk. Write the bytes,
// then Commit them under a key, or Abort. Nothing is visible before Commit.
type Upload struct {
	s    *Store
	f    *os.File
	name string
	h    hash.Hash
	n    int64
	err  error
	done bool
}

// NewUpload starts an upload in the data directory's tmp folder, so that
// its commit is a rename on the same filesystem.
func (s *Store) NewUpload() (*Upload, error) {
	name := "tmp/" + newVersion()
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create upload file: %w", mapErr(err))
	}
	return &Upload{s: s, f: f, name: name, h: sha256.New()}, nil
}

// Write appends p to the upload, hashing and counting it.
func (u *Upload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if u.s.maxSize > 0 && u.n+int64(len(p)) > u.s.maxSize {
		u.err = fmt.Errorf("%w (%d bytes)", ErrTooLarge, u.s.maxSize)
		return 0, u.err
	}
	var n int
	var err error
	if len(p) >= parallelHash {
		// SHA-256 runs at about the speed of the disk: hash on another core
		// while the bytes are written.
		done := make(chan struct{})
		go func() { u.h.Write(p); close(done) }()
		n, err = u.f.Write(p)
		<-done
	} else {
		n, err = u.f.Write(p)
		u.h.Write(p[:n])
	}
	u.n += int64(n)
	if err != nil {
		u.err = fmt.Errorf("write upload: %w", mapErr(err))
	}
	return n, u.err
}

// parallelHash is the smallest write whose hashing is worth a goroutine.
const parallelHash = 64 << 10

// ReadFrom copies r into the upload with two pooled buffers: while one is
// hashed and written, the next is read. io.Copy uses it, so a request body
// is neither read with a small buffer nor copied through an allocation.
func (u *Upload) ReadFrom(r io.Reader) (int64, error) {
	ap, bp := u.s.bufs.Get().(*[]byte), u.s.bufs.Get().(*[]byte)
	defer u.s.bufs.Put(ap)
	defer u.s.bufs.Put(bp)
	cur, next := *ap, *bp
	var total int64
	n, rerr := io.ReadFull(r, cur)
	for n > 0 {
		written := make(chan error, 1)
		go func(p []byte) { _, err := u.Write(p); written <- err }(cur[:n])
		var m int
		var nerr error
		if rerr == nil {
			m, nerr = io.ReadFull(r, next)
		}
		if werr := <-written; werr != nil {
			return total, werr
		}
		total += int64(n)
		if rerr != nil {
			break
		}
		cur, next, n, rerr = next, cur, m, nerr
	}
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		return total, nil
	}
	return total, rerr
}

// Abort discards the upload. It is safe to call after Commit, and more than once.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	u.s.root.Remove(u.name)
}

// Info describes an object being committed.
type Info struct {
	ContentType string
	DocID       string
	MediaID     string
	Meta        json.RawMessage
	Props       json.RawMessage
	ModTime     time.Time // zero: now
	// Size is the length the sender declared (Content-Length), or -1. A
	// different number of bytes received is ErrShortBody and nothing is stored.
	Size int64
}

// Commit makes the upload the current version of key: it fsyncs the bytes,
// moves them into place, writes the object's sidecar (the commit point) and
// indexes it. An earlier version of key is replaced atomically.
func (u *Upload) Commit(ctx context.Context, key string, info Info) (Object, error) {
	defer u.Abort()
	if u.err != nil {
		return Object{}, u.err
	}
	if info.Size >= 0 && u.n != info.Size {
		return Object{}, fmt.Errorf("%w: got %d of %d bytes", ErrShortBody, u.n, info.Size)
	}
	if key == "" {
		return Object{}, fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	// The blob takes its final name at once: no object names it until the
	// sidecar does, so it may be visible before it is durable. Making it
	// durable (file, then folder) runs beside the writing of the sidecar;
	// both finish before the sidecar's rename, the commit point.
	blob := newVersion()
	err := failpoint("blob-rename")
	if err == nil {
		err = u.s.root.Rename(u.name, blobPath(blob))
	}
	if err != nil {
		return Object{}, fmt.Errorf("move upload into place: %w", mapErr(err))
	}
	u.done = true
	defer u.f.Close()
	durable := func() error {
		err := failpoint("blob-fsync")
		if err == nil {
			err = fsync(u.f)
		}
		if err != nil {
			return fmt.Errorf("fsync upload: %w", mapErr(err))
		}
		if err := u.f.Close(); err != nil {
			return fmt.Errorf("close upload: %w", mapErr(err))
		}
		return u.s.syncDir(blobPath(blob)[:len("blobs/xx")])
	}
	now := time.Now()
	o := Object{
		Key: key, Blob: blob, Size: u.n, SHA256: hex.EncodeToString(u.h.Sum(nil)),
		ContentType: info.ContentType, DocID: info.DocID, MediaID: info.MediaID,
		Meta: info.Meta, Props: info.Props, Created: now, Updated: now, ModTime: info.ModTime,
	}
	if o.ModTime.IsZero() {
		o.ModTime = now
	}
	if err := u.s.commit(ctx, o, false, durable); err != nil {
		if !isInDoubt(err) {
			u.s.root.Remove(blobPath(blob))
		}
		return Object{}, err
	}
	return o, nil
}

// Put stores the bytes of r under key; see Upload.Commit.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, info Info) (Object, error) {
	u, err := s.NewUpload()
	if err != nil {
		return Object{}, err
	}
	defer u.Abort()
	if _, err := io.Copy(u, r); err != nil {
		return Object{}, err
	}
	return u.Commit(ctx, key, info)
}

func (s *Store) stripe(key string) *sync.Mutex {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &s.stripes[h%uint32(len(s.stripes))]
}

// commit writes o's sidecar and index row under the key's lock, then deletes
// the blob of the version it replaced. keepCreated keeps o.Created as given.
func (s *Store) commit(ctx context.Context, o Object, keepCreated bool, blobDurable func() error) error {
	s.tree.RLock()
	defer s.tree.RUnlock()
	mu := s.stripe(o.Key)
	mu.Lock()
	defer mu.Unlock()

	change := ChangeUpdated
	old, err := s.get(ctx, o.Key)
	switch {
	case err == nil:
		if !keepCreated {
			o.Created = old.Created
		}
	case errors.Is(err, ErrNotFound):
		change = ChangeCreated
	default:
		return err
	}
	if err := s.checkParents(ctx, o.Key); err != nil {
		return err
	}
	if s.remote != nil && s.through {
		if err := s.pushThrough(ctx, o); err != nil {
			return err
		}
	}
	p, err := s.placeSidecar(o, blobDurable)
	if err != nil {
		if s.remote != nil && s.through {
			s.undoThrough(ctx, o, old)
		}
		return err
	}
	if err := s.update(ctx, func(tx index.Tx) error {
		if err := failpoint("index"); err != nil {
			return err
		}
		if err := tx.PutObject(o); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, change, o, old.Blob)
	}); err != nil {
		s.cache.drop(o.Key)
		err = s.rollback(p, err)
		if s.remote != nil && s.through && !isInDoubt(err) {
			s.undoThrough(ctx, o, old)
		}
		return err
	}
	p.done()
	s.cache.put(o)
	if parent, _ := Split(o.Key); parent != "" {
		s.dirs.Store(parent, struct{}{})
	}
	if s.remote != nil && s.through {
		s.evict(o.Blob)
		if old.Blob != "" && old.Blob != o.Blob && !s.blobReferenced(ctx, old.Blob) {
			if err := s.remote.Delete(ctx, remoteBlob(old.Blob)); err != nil {
				s.log.Warn("could not delete a replaced blob in the backend", "blob", old.Blob, "err", err)
			}
		}
	}
	if old.Blob != "" && old.Blob != o.Blob {
		s.removeBlob(old.Blob)
	}
	return nil
}

// checkParents refuses a key below an existing object: a file cannot also be a folder.
func (s *Store) checkParents(ctx context.Context, key string) error {
	if parent, _ := Split(key); parent == "" || s.knownDir(parent) {
		return nil
	}
	if ps := Parents(key); len(ps) > 0 {
		if o, err := s.longest(ctx, ps); err == nil {
			return fmt.Errorf("%w: %q is an object, not a folder", ErrConflict, UnescapeKey(o.Key))
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func (s *Store) knownDir(key string) bool {
	_, ok := s.dirs.Load(key)
	return key != "" && ok
}

// removeBlob deletes the local file of a blob no object names any more
// (copies share blobs).
func (s *Store) removeBlob(blob string) {
	if s.blobReferenced(context.Background(), blob) {
		return
	}
	if err := s.root.Remove(blobPath(blob)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("could not remove replaced blob; reindex removes it later", "blob", blob, "err", err)
	}
}

// sidecar is the on-disk record of an object, at objects/<key>. Its key is
// its path, so that moving a folder moves its objects with one rename.
type sidecar struct {
	Format      int             `json:"attachd_object"`
	Blob        string          `json:"blob"`
	Size        int64           `json:"size"`
	SHA256      string          `json:"sha256"`
	ContentType string          `json:"content_type"`
	DocID       string          `json:"doc_id,omitempty"`
	MediaID     string          `json:"media_id,omitempty"`
	Meta        json.RawMessage `json:"metadata,omitempty"`
	Props       json.RawMessage `json:"dav_props,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	ModTime     time.Time       `json:"mtime"`
}

func encodeSidecar(o Object) ([]byte, error) {
	b, err := json.Marshal(sidecar{Format: 1, Blob: o.Blob, Size: o.Size, SHA256: o.SHA256,
		ContentType: o.ContentType, DocID: o.DocID, MediaID: o.MediaID, Meta: nilIfEmpty(o.Meta),
		Props: nilIfEmpty(o.Props), Created: o.Created, Updated: o.Updated, ModTime: o.ModTime})
	if err != nil {
		return nil, fmt.Errorf("encode sidecar: %w", err)
	}
	return b, nil
}

// writeSidecar writes o's sidecar into place; see placeSidecar.
func (s *Store) writeSidecar(o Object) (*placement, error) { return s.placeSidecar(o, nil) }

// placeSidecar writes o's sidecar and renames it into place once durable has
// returned: the sidecar's own write and fsync run meanwhile, so a store waits
// for two rounds of syncs, not four. The placement it returns undoes the
// rename until done is called (see commit.go).
func (s *Store) placeSidecar(o Object, durable func() error) (*placement, error) {
	var durableErr chan error
	if durable != nil {
		durableErr = make(chan error, 1)
		go func() { durableErr <- durable() }()
	}
	wait := func() error {
		if durableErr == nil {
			return nil
		}
		err := <-durableErr
		durableErr = nil
		return err
	}
	p := &placement{s: s}
	fail := func(err error) (*placement, error) {
		err = errors.Join(err, wait())
		if uerr := p.undo(); uerr != nil {
			s.log.Warn("could not remove a folder made for a failed store; reindex removes it", "err", uerr)
		}
		return nil, err
	}
	b, err := encodeSidecar(o)
	if err != nil {
		return fail(err)
	}
	parent, _ := Split(o.Key)
	dir := join("objects", parent)
	if err := s.mkdirAllFor(p, dir); err != nil {
		return fail(err)
	}
	tmp, err := s.writeTemp(b)
	if err != nil {
		return fail(err)
	}
	if err := wait(); err != nil {
		s.root.Remove(tmp)
		return fail(err)
	}
	name := "objects/" + o.Key
	if err := p.linkPrevious(name); err != nil {
		s.root.Remove(tmp)
		return fail(err)
	}
	err = failpoint("sidecar-rename")
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		s.root.Remove(tmp)
		p.done()
		return fail(fmt.Errorf("write sidecar of %q: %w", UnescapeKey(o.Key), mapErr(err)))
	}
	p.name = name
	err = failpoint("sidecar-dir-fsync")
	if err == nil {
		err = s.syncDir(dir)
	}
	if err != nil {
		return nil, s.rollback(p, mapErr(err))
	}
	return p, nil
}

func nilIfEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || string(b) == "{}" || string(b) == "null" {
		return nil
	}
	return b
}

// UnescapeKey returns key with every segment decoded, for messages and display.
func UnescapeKey(key string) string {
	out := ""
	for i, seg := range splitKey(key) {
		if i > 0 {
			out += "/"
		}
		out += UnescapeSegment(seg)
	}
	return out
}
