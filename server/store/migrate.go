package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/attachd/attachd/server/index"
)

// Migrate (attachd migrate) copies every object of a data directory from the
// backend its bytes are in to another one, so that [storage] backend can be
// switched to it with nothing lost (docs/migrate.md).
//
// It reads the index beside a running server (SQLite lets a second process
// read it; or the cluster's PostgreSQL index), and for each object copies
// its blob to the target, hashing it as it streams: bytes whose SHA-256 or
// size is not what the index says are not committed, and the object is
// reported by key. Into a storage plugin it also writes the object's
// sidecar, as the replicator does (remote.go), so that the target alone can
// rebuild the index (attachd reindex). Into "local" the blob goes to the
// data directory's blobs/, beside the sidecars already there.
//
// Progress is kept in migrateStateFile in the data directory, after each
// batch: a run that was killed continues after the last batch it finished,
// and any run skips the objects whose blob (and sidecar) the target already
// holds with the right size. Objects stored or changed after a run listed
// the index are copied by the next run; one run with the server stopped
// before the switch leaves nothing behind.

// migrateStateFile records a migration's progress in the data directory.
const migrateStateFile = "migrate.json"

// MigrateOptions are the choices of Migrate.
type MigrateOptions struct {
	// IndexURL is the PostgreSQL index of a cluster; "" is the data
	// directory's SQLite index.
	IndexURL string
	// From and To name the source and target backends (LocalBackend or a
	// storage plugin), for the progress record and the messages.
	From, To string
	// Source holds the bytes that are not in the data directory's spool;
	// nil when From is LocalBackend.
	Source Backend
	// Target receives them; nil when To is LocalBackend.
	Target Backend
	// Workers copy objects at once (default 4).
	Workers int
	// Prune, once every object is copied, deletes from the target the
	// sidecars of objects the index does not hold (deleted after an earlier
	// run copied them: left there, reindex or a lookup would bring them
	// back), and their blobs. It needs the server stopped, and a target
	// that no other data directory shares.
	Prune bool
	// Progress, if set, is called after each batch: Phase "objects", Done
	// and Total count objects and bytes. Cancelling the context from it
	// stops the migration there.
	Progress func(CopyProgress)
}

// MigrateResult is what a migration did.
type MigrateResult struct {
	Objects  int64 // in the index when the run listed it
	Bytes    int64 // their total size
	Copied   int64 // objects whose blob this run copied
	Skipped  int64 // objects the target held already
	Vanished int64 // deleted or replaced while the run went on (the new version is copied instead, if any)
	Resumed  bool  // continued an interrupted run
	// Orphans counts the sidecars in the target of objects the index does
	// not hold; Pruned, those Prune deleted.
	Orphans, Pruned int64
}

// MigrateError lists the objects that could not be copied.
type MigrateError struct {
	Failed []string // one line per object, naming its key
}

func (e *MigrateError) Error() string {
	const show = 10
	lines := e.Failed
	if len(lines) > show {
		lines = append(lines[:show:show], fmt.Sprintf("… and %d more", len(e.Failed)-show))
	}
	return fmt.Sprintf("%d objects not copied:\n  %s", len(e.Failed), strings.Join(lines, "\n  "))
}

// ErrChecksum marks an object whose bytes do not match its SHA-256 or size.
var ErrChecksum = errors.New("checksum mismatch")

type migrateState struct {
	From     string     `json:"from"`
	To       string     `json:"to"`
	After    string     `json:"after"` // every object up to this key is done
	Done     CopyCounts `json:"done"`
	Total    CopyCounts `json:"total"`
	Finished bool       `json:"finished"`
	Started  time.Time  `json:"started"`
}

// objRef is what a run lists of each object: the rest is read again from
// the index when it is copied, so that the copy is of the latest version.
type objRef struct {
	key  string
	size int64
}

// Migrate copies the objects of the data directory dir (see above).
func Migrate(ctx context.Context, dir string, opts MigrateOptions) (MigrateResult, error) {
	var res MigrateResult
	if opts.From == opts.To {
		return res, fmt.Errorf("migrate: the source and the target are both %q", opts.To)
	}
	if opts.To == LocalBackend && opts.IndexURL != "" {
		return res, errors.New("migrate: a cluster (a shared [index] url) needs a backend every node shares, not \"local\"")
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs")); err != nil && opts.IndexURL == "" {
		return res, fmt.Errorf("%s is not an attachd data directory: %w", dir, err)
	}
	unlock, err := lockFile(filepath.Join(dir, "migrate.lock"), "another attachd migrate is running on "+dir)
	if err != nil {
		return res, err
	}
	defer unlock()
	if opts.Prune {
		if opts.To == LocalBackend {
			return res, errors.New("migrate: --prune is for a storage plugin's sidecars; the data directory has none of its own")
		}
		// The data directory's own lock: no server changes the index meanwhile.
		unlock, err := lockFile(filepath.Join(dir, "lock"), "--prune: attachd is running on "+dir+": stop it first")
		if err != nil {
			return res, err
		}
		defer unlock()
	}
	idx, err := openSharedIndex(dir, opts.IndexURL)
	if err != nil {
		return res, fmt.Errorf("open the index: %w", err)
	}
	defer idx.Close()
	m := &migration{ctx: ctx, dir: dir, idx: idx, opts: opts}
	if opts.Target == nil {
		local, err := NewDirBackend(dir)
		if err != nil {
			return res, err
		}
		defer local.Close()
		m.target, m.local = local, true
	} else {
		m.target = opts.Target
	}
	if m.spool, err = os.OpenRoot(filepath.Join(dir, "blobs")); err != nil && opts.IndexURL == "" {
		return res, err
	}
	if m.spool != nil {
		defer m.spool.Close()
	}

	var refs []objRef
	if err := idx.Walk(ctx, "", func(o index.Object) error {
		refs = append(refs, objRef{key: o.Key, size: o.Size})
		res.Bytes += o.Size
		return nil
	}); err != nil {
		return res, fmt.Errorf("read the index: %w", readErr(err))
	}
	res.Objects = int64(len(refs))

	prev, err := readMigrateState(dir)
	if err != nil {
		return res, err
	}
	m.st = migrateState{From: opts.From, To: opts.To, Started: time.Now().UTC()}
	if prev != nil && !prev.Finished && prev.From == opts.From && prev.To == opts.To {
		m.st, res.Resumed = *prev, true
		m.st.Done.Objects, m.st.Done.Bytes = 0, 0 // counted again below, against this listing
	}
	m.st.Total = CopyCounts{Objects: res.Objects, Bytes: res.Bytes}
	start := 0
	for start < len(refs) && m.st.After != "" && refs[start].key <= m.st.After {
		m.st.Done.Objects++
		m.st.Done.Bytes += refs[start].size
		start++
	}
	if err := m.save(); err != nil {
		return res, err
	}
	m.progress()

	var failed []string
	batch := max(opts.Workers*4, 16)
	for i := start; i < len(refs); i += batch {
		part := refs[i:min(i+batch, len(refs))]
		outs := make([]copyOutcome, len(part))
		work := make(chan int)
		var wg sync.WaitGroup
		for range min(opts.Workers, len(part)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					outs[j] = m.copyObject(part[j])
				}
			}()
		}
		for j := range part {
			work <- j
		}
		close(work)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("migration interrupted (%d of %d objects done): run the same command again to continue",
				m.st.Done.Objects, res.Objects)
		}
		for j, o := range outs {
			switch {
			case o.err != nil && (errors.Is(o.err, ErrUnavailable) || errors.Is(o.err, index.ErrUnavailable)):
				// The target or the index is down: stop here, so that the
				// next run continues with this batch.
				return res, fmt.Errorf("migrate %q: %w; run the same command again to continue", UnescapeKey(part[j].key), o.err)
			case o.err != nil:
				failed = append(failed, o.err.Error())
			case o.vanished:
				res.Vanished++
			case o.copied:
				res.Copied++
			default:
				res.Skipped++
			}
			m.st.Done.Objects++
			m.st.Done.Bytes += part[j].size
		}
		m.st.After = part[len(part)-1].key
		if err := m.save(); err != nil {
			return res, err
		}
		m.progress()
	}
	if len(failed) > 0 {
		// Not finished: the next run starts over, skipping what is there,
		// and tries these again.
		m.st.Finished, m.st.After = true, ""
		m.save()
		return res, &MigrateError{Failed: failed}
	}
	m.st.Finished = true
	if err := m.save(); err != nil {
		return res, err
	}
	if !m.local {
		keys := make(map[string]bool, len(refs))
		for _, r := range refs {
			keys[r.key] = true
		}
		if err := m.orphans(keys, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// orphans counts (and with Prune deletes) the sidecars in the target of
// objects the index does not hold.
func (m *migration) orphans(keys map[string]bool, res *MigrateResult) error {
	cursor := ""
	for {
		page, next, err := m.target.List(m.ctx, "objects/", cursor, 1000)
		if err != nil {
			return remoteErr("list sidecars in the target", err)
		}
		for _, bi := range page {
			key := strings.TrimPrefix(bi.Name, "objects/")
			if keys[key] {
				continue
			}
			if _, err := lookup(m.idx.Get(m.ctx, key)); !errors.Is(err, ErrNotFound) {
				if err != nil {
					return err
				}
				continue // stored since the listing
			}
			res.Orphans++
			if !m.opts.Prune {
				continue
			}
			o, err := m.readTargetSidecar(key)
			if err != nil {
				return err
			}
			if err := m.target.Delete(m.ctx, bi.Name); err != nil && !errors.Is(err, ErrNotFound) {
				return remoteErr("delete sidecar", err)
			}
			if o.Blob != "" {
				if used, err := m.idx.BlobInUse(m.ctx, o.Blob); err == nil && !used {
					if err := m.target.Delete(m.ctx, remoteBlob(o.Blob)); err != nil && !errors.Is(err, ErrNotFound) {
						return remoteErr("delete blob", err)
					}
				}
			}
			res.Pruned++
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// readTargetSidecar reads the sidecar of key in the target; an unreadable
// one is an object without a blob.
func (m *migration) readTargetSidecar(key string) (Object, error) {
	rc, err := m.target.Open(m.ctx, remoteSidecar(key), 0, 1<<20)
	if err != nil {
		return Object{}, remoteErr("read sidecar", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return Object{}, remoteErr("read sidecar", err)
	}
	o, err := decodeSidecar(key, b)
	if err != nil {
		return Object{Key: key}, nil
	}
	return o, nil
}

// lockFile takes an exclusive lock on path, created if needed: one
// migration of a data directory at a time.
func lockFile(path, busy string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errors.New(busy)
	}
	return func() { f.Close() }, nil
}

func readMigrateState(dir string) (*migrateState, error) {
	return readState[migrateState](dir, migrateStateFile)
}

// migration is one run of Migrate.
type migration struct {
	ctx    context.Context
	dir    string
	idx    index.Index
	opts   MigrateOptions
	target Backend
	local  bool     // target is the data directory
	spool  *os.Root // the data directory's blobs/
	st     migrateState
}

func (m *migration) save() error {
	if err := writeState(m.dir, migrateStateFile, m.st); err != nil {
		return fmt.Errorf("record the migration's progress: %w", err)
	}
	return nil
}

func (m *migration) progress() {
	if m.opts.Progress != nil {
		m.opts.Progress(CopyProgress{Phase: copyObjects, Done: m.st.Done, Total: m.st.Total})
	}
}

// blobName is where the target keeps blob.
func (m *migration) blobName(blob string) string {
	if m.local {
		return blobPath(blob)
	}
	return remoteBlob(blob)
}

type copyOutcome struct {
	copied, vanished bool
	err              error
}

// copyObject copies the object at key as the index has it now, then makes
// sure the target did not keep a version that was replaced or deleted
// meanwhile.
func (m *migration) copyObject(ref objRef) copyOutcome {
	// A stalled backend fails the object; a large one is given the time
	// to stream at 1 MiB/s.
	ctx, cancel := context.WithTimeout(m.ctx, remoteTimeout+time.Duration(ref.size>>20)*time.Second)
	defer cancel()
	key := ref.key
	var out copyOutcome
	for range 3 {
		o, err := lookup(m.idx.Get(ctx, key))
		if errors.Is(err, ErrNotFound) {
			out.vanished = true
			return out
		}
		if err != nil {
			out.err = err
			return out
		}
		copied, err := m.copyVersion(ctx, o)
		out.copied = out.copied || copied
		if errors.Is(err, ErrNotFound) {
			// Not in the spool nor the source: replaced or deleted since
			// the lookup, or lost.
			if cur, cerr := lookup(m.idx.Get(ctx, key)); cerr == nil && cur.Blob == o.Blob {
				out.err = fmt.Errorf("%q: its bytes (blob %s) are neither in the data directory nor in backend %q",
					UnescapeKey(key), o.Blob, m.opts.From)
				return out
			}
			continue
		}
		if err != nil {
			out.err = err
			return out
		}
		// A change made while this copy went on must win in the target.
		cur, err := lookup(m.idx.Get(ctx, key))
		switch {
		case errors.Is(err, ErrNotFound):
			m.forget(ctx, o)
			out.vanished = true
			return out
		case err != nil:
			out.err = err
			return out
		case cur.Blob == o.Blob && cur.Updated.Equal(o.Updated):
			return out
		}
		out.vanished = true // and copy the new version
	}
	return out // changing too fast: the next run copies it
}

// forget removes from the target what copyVersion put there for o, deleted
// meanwhile: a sidecar left behind would bring the object back.
func (m *migration) forget(ctx context.Context, o Object) {
	if !m.local {
		m.target.Delete(ctx, remoteSidecar(o.Key))
	}
	if used, err := m.idx.BlobInUse(ctx, o.Blob); err == nil && !used {
		m.target.Delete(ctx, m.blobName(o.Blob))
	}
}

// copyVersion copies o's blob, unless the target has it with o's size, and
// its sidecar, unless the target has it as recent and as long.
func (m *migration) copyVersion(ctx context.Context, o Object) (copied bool, err error) {
	name := m.blobName(o.Blob)
	if bi, err := m.target.Stat(ctx, name); err != nil || bi.Size != o.Size {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, remoteErr("stat blob in the target", err)
		}
		if err := m.copyBlob(ctx, o, name); err != nil {
			return false, err
		}
		copied = true
	}
	if m.local {
		return copied, nil
	}
	b, err := encodeSidecar(o)
	if err != nil {
		return copied, err
	}
	if !copied {
		bi, err := m.target.Stat(ctx, remoteSidecar(o.Key))
		if err == nil && bi.Size == int64(len(b)) && (bi.ModTime.IsZero() || !bi.ModTime.Before(o.Updated)) {
			return false, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, remoteErr("stat sidecar in the target", err)
		}
	}
	w, err := m.target.Create(ctx, remoteSidecar(o.Key), int64(len(b)))
	if err != nil {
		return copied, remoteErr("create sidecar", err)
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return copied, remoteErr("write sidecar", err)
	}
	return copied, remoteErr("commit sidecar", w.Commit(ctx))
}

// openSource opens o's blob: in the spool if it is there, else in the
// source backend.
func (m *migration) openSource(ctx context.Context, o Object) (io.ReadCloser, error) {
	if m.spool != nil && len(o.Blob) > 2 {
		f, err := m.spool.Open(o.Blob[:2] + "/" + o.Blob)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open blob of %q: %w", UnescapeKey(o.Key), err)
		}
	}
	if m.opts.Source == nil {
		return nil, ErrNotFound
	}
	rc, err := m.opts.Source.Open(ctx, remoteBlob(o.Blob), 0, -1)
	if err != nil {
		return nil, remoteErr("read blob from the source", err)
	}
	return rc, nil
}

// copyBlob streams o's blob to the target as name, hashing it on the way,
// and commits it only if its size and SHA-256 are those the index holds.
func (m *migration) copyBlob(ctx context.Context, o Object, name string) error {
	src, err := m.openSource(ctx, o)
	if err != nil {
		return err
	}
	defer src.Close()
	w, err := m.target.Create(ctx, name, o.Size)
	if err != nil {
		return remoteErr("create blob in the target", err)
	}
	h := sha256.New()
	// One byte more than the size: a longer blob is a mismatch too.
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(src, o.Size+1))
	if err != nil {
		w.Abort()
		return fmt.Errorf("copy %q: %w", UnescapeKey(o.Key), remoteErr("copy blob", err))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != o.Size || (o.SHA256 != "" && !strings.EqualFold(sum, o.SHA256)) {
		w.Abort()
		return fmt.Errorf("%w: %q (blob %s): its bytes in %s are %d long with SHA-256 %s; the index says %d bytes, SHA-256 %s: not copied",
			ErrChecksum, UnescapeKey(o.Key), o.Blob, m.sourceOf(), n, sum, o.Size, o.SHA256)
	}
	if err := w.Commit(ctx); err != nil {
		return remoteErr("commit blob in the target", err)
	}
	return nil
}

func (m *migration) sourceOf() string {
	if m.opts.From == LocalBackend {
		return "the data directory"
	}
	return fmt.Sprintf("the spool or backend %q", m.opts.From)
}
