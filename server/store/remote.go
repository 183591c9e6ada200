package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/attachd/attachd/server/index"
)

// ErrUnavailable is returned when the remote backend cannot be reached.
var ErrUnavailable = errors.New("storage backend unavailable")

// In the remote backend, an object is two blobs: its bytes at
// "blobs/<blob>" and its sidecar at "objects/<key>", so that the backend
// alone is enough to rebuild the index (Reindex with Options.Remote).
func remoteBlob(blob string) string { return "blobs/" + blob }

func remoteSidecar(key string) string { return "objects/" + key }

// remoteTimeout bounds one synchronous call to the backend (write-through
// stores, deletes, fetching a sidecar on an index miss): Kazoo waits forever
// for an answer (docs/kazoo.md §5), so a stalled backend must fail instead.
const remoteTimeout = 2 * time.Minute

func remoteErr(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}

// pushBlob copies a local blob to the backend.
func (s *Store) pushBlob(ctx context.Context, blob string) error {
	f, err := s.root.Open(blobPath(blob))
	if err != nil {
		return fmt.Errorf("open blob %s: %w", blob, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w, err := s.remote.Create(ctx, remoteBlob(blob), fi.Size())
	if err != nil {
		return remoteErr("create blob", err)
	}
	// A storage plugin reads the spooled file itself, through a descriptor.
	if _, err := copyFile(w, f); err != nil {
		w.Abort()
		return remoteErr("write blob", err)
	}
	return remoteErr("commit blob", w.Commit(ctx))
}

// pushSidecar writes the object's sidecar to the backend.
func (s *Store) pushSidecar(ctx context.Context, o Object) error {
	b, err := encodeSidecar(o)
	if err != nil {
		return err
	}
	w, err := s.remote.Create(ctx, remoteSidecar(o.Key), int64(len(b)))
	if err != nil {
		return remoteErr("create sidecar", err)
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return remoteErr("write sidecar", err)
	}
	return remoteErr("commit sidecar", w.Commit(ctx))
}

// pushThrough stores o in the backend before the local commit, for
// write-through mode: Kazoo hears 201 only once the backend has the object.
func (s *Store) pushThrough(ctx context.Context, o Object) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	if err := s.pushBlob(ctx, o.Blob); err != nil {
		return err
	}
	return s.pushSidecar(ctx, o)
}

// undoThrough puts the backend back as it was before a write-through store
// of o that failed locally: the previous sidecar, or none, and no new blob.
// It is best effort: the local index is the one that answers reads, and
// reindex from the backend settles on one whole version either way.
func (s *Store) undoThrough(ctx context.Context, o, old Object) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remoteTimeout)
	defer cancel()
	var err error
	if old.Blob != "" {
		err = s.pushSidecar(ctx, old)
	} else {
		err = s.remote.Delete(ctx, remoteSidecar(o.Key))
	}
	if err == nil {
		err = s.deleteRemoteBlob(ctx, o.Blob)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Warn("could not undo a failed write-through store in the backend", "key", UnescapeKey(o.Key), "err", err)
	}
}

// evict removes the local copy of a blob the backend holds.
func (s *Store) evict(blob string) {
	if err := s.root.Remove(blobPath(blob)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("could not remove spooled copy", "blob", blob, "err", err)
	}
}

// remoteReader reads a blob from the backend, seeking without I/O: it opens
// a ranged read at the position of the next Read, and reuses it while reads
// stay sequential.
//
// A blob read from another node's spool may move on to the backend while it
// is read: alt, if set, is where to look when b no longer has it.
type remoteReader struct {
	b     Backend
	alt   Backend
	name  string
	size  int64
	pos   int64
	rc    io.ReadCloser
	rcPos int64
}

func (r *remoteReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.rc == nil || r.rcPos != r.pos {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.rc.Read(p)
	r.pos += int64(n)
	r.rcPos += int64(n)
	if err == io.EOF && r.pos < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// open starts a ranged read at pos, from alt if b no longer has the blob.
func (r *remoteReader) open() error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	rc, err := r.b.Open(ctx, r.name, r.pos, -1)
	if errors.Is(err, ErrNotFound) && r.alt != nil {
		r.b, r.alt = r.alt, nil
		rc, err = r.b.Open(ctx, r.name, r.pos, -1)
	}
	if err != nil {
		cancel()
		return remoteErr("read blob", err)
	}
	r.rc, r.rcPos = struct {
		io.Reader
		io.Closer
	}{rc, closerFunc(func() error { cancel(); return rc.Close() })}, r.pos
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (r *remoteReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	}
	if off < 0 {
		return 0, errors.New("seek before start")
	}
	r.pos = off
	return off, nil
}

func (r *remoteReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

// statRemote finds an object the index does not know in the backend, and
// indexes it: another attachd sharing the backend stored it.
func (s *Store) statRemote(ctx context.Context, key string) (Object, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	rc, err := s.remote.Open(ctx, remoteSidecar(key), 0, 1<<20)
	if err != nil {
		return Object{}, remoteErr("read sidecar", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return Object{}, remoteErr("read sidecar", err)
	}
	o, err := decodeSidecar(key, b)
	if err != nil {
		return Object{}, err
	}
	s.tree.RLock()
	defer s.tree.RUnlock()
	mu := s.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	if cur, err := s.get(ctx, key); err == nil {
		return cur, nil // stored here meanwhile
	}
	if err := s.checkParents(ctx, key); err != nil {
		return Object{}, err
	}
	p, err := s.writeSidecar(o)
	if err != nil {
		return Object{}, err
	}
	if err := s.update(ctx, func(tx index.Tx) error { return tx.PutObject(o) }); err != nil {
		return Object{}, s.rollback(p, err)
	}
	p.done()
	s.cache.put(o)
	return o, nil
}

// reindexRemote rebuilds the local objects tree and index from the
// backend's sidecars.
func (s *Store) reindexRemote(ctx context.Context) (int, error) {
	n, cursor := 0, ""
	for {
		page, next, err := s.remote.List(ctx, "objects/", cursor, 1000)
		if err != nil {
			return n, remoteErr("list sidecars", err)
		}
		for _, bi := range page {
			key := bi.Name[len("objects/"):]
			rc, err := s.remote.Open(ctx, bi.Name, 0, -1)
			if err != nil {
				return n, remoteErr("read sidecar", err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return n, remoteErr("read sidecar", err)
			}
			o, err := decodeSidecar(key, b)
			if err != nil {
				s.log.Warn("reindex: skipping unreadable sidecar in the backend", "sidecar", bi.Name, "err", err)
				continue
			}
			p, err := s.writeSidecar(o)
			if err != nil {
				return n, err
			}
			p.done()
			n++
		}
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}
