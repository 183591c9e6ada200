package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Upload is a new object's bytes on their way to the disk. Write the bytes,
// then Commit them under a key, or Abort. Nothing is visible before Commit.
type Upload struct {
	s    *Store
	f    *os.File
	name string // in tmp/
	h    hash.Hash
	n    int64
	err  error
	done bool
}

// NewUpload starts an upload in the data directory's tmp folder, so that
// its commit is a rename on the same filesystem.
func (s *Store) NewUpload() (*Upload, error) {
	name := newVersion()
	f, err := s.tmpDir.create(name)
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

// ReadFrom copies r into the upload. A body that fits one pooled buffer is
// written and hashed at once (Write). A bigger one goes through a ring of
// pooled buffers in three stages: this goroutine reads, one goroutine writes
// to the file, one hashes. SHA-256 is the slowest stage (about a core's worth
// at disk speed), and in lock step it waited for the network and the disk at
// every buffer; with the ring it runs on while they fill the next ones.
// io.Copy uses ReadFrom, so a request body is neither read with a small
// buffer nor copied through an allocation.
func (u *Upload) ReadFrom(r io.Reader) (int64, error) {
	if u.err != nil {
		return 0, u.err
	}
	first := u.s.bufs.Get().(*[]byte)
	n, rerr := io.ReadFull(r, *first)
	if rerr != nil {
		defer u.s.bufs.Put(first)
		if rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return 0, rerr
		}
		m, err := u.Write((*first)[:n])
		return int64(m), err
	}
	return u.pipe(r, first)
}

// ringSize is how many buffers one upload's pipeline holds at most (1 MiB).
const ringSize = 4

type chunk struct {
	b    *[]byte
	n    int
	skip bool // not hashed: the pipeline failed before it was written
}

// pipe is ReadFrom's pipeline for a body bigger than one buffer; first holds
// the body's first full buffer.
func (u *Upload) pipe(r io.Reader, first *[]byte) (int64, error) {
	toWrite := make(chan chunk, ringSize)
	toHash := make(chan chunk, ringSize)
	free := make(chan *[]byte, ringSize)
	var failed atomic.Bool
	var werr error // the writer's, read once the hasher is done
	total := u.n   // counted by the reader alone; u.n by the writer
	go func() {
		for c := range toWrite {
			if !c.skip && werr == nil {
				m, err := u.f.Write((*c.b)[:c.n])
				u.n += int64(m)
				if err != nil {
					werr = fmt.Errorf("write upload: %w", mapErr(err))
					failed.Store(true)
				}
			}
			c.skip = c.skip || werr != nil
			toHash <- c
		}
		close(toHash)
	}()
	hashed := make(chan struct{})
	go func() {
		for c := range toHash {
			if !c.skip {
				u.h.Write((*c.b)[:c.n])
			}
			free <- c.b
		}
		close(hashed)
	}()

	// The reader: this goroutine.
	var read int64
	var rerr error
	held, b, n := 1, first, len(*first)
	for {
		if u.s.maxSize > 0 && total+int64(n) > u.s.maxSize {
			u.err = fmt.Errorf("%w (%d bytes)", ErrTooLarge, u.s.maxSize)
			toWrite <- chunk{b: b, skip: true}
			break
		}
		total += int64(n)
		read += int64(n)
		toWrite <- chunk{b: b, n: n}
		if rerr != nil || failed.Load() {
			break
		}
		if held < ringSize {
			select {
			case b = <-free:
			default:
				b = u.s.bufs.Get().(*[]byte)
				held++
			}
		} else {
			b = <-free
		}
		n, rerr = io.ReadFull(r, *b)
		if n == 0 {
			free <- b // room for it: the ring has held buffers in all
			break
		}
	}
	close(toWrite)
	<-hashed
	for ; held > 0; held-- {
		u.s.bufs.Put(<-free)
	}
	switch {
	case u.err != nil:
		return read, u.err
	case werr != nil:
		u.err = werr
		return read, werr
	case rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF:
		return read, rerr
	}
	return read, nil
}

// Abort discards the upload. It is safe to call after Commit, and more than once.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	u.s.tmpDir.remove(u.name)
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
	shard := u.s.shardDir(blob)
	err := failpoint("blob-rename")
	if err == nil {
		err = u.s.tmpDir.renameTo(u.name, shard, blob)
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
		if err := shard.sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", blobPath(blob)[:len("blobs/xx")], mapErr(err))
		}
		return nil
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
	o, err = u.s.commit(ctx, o, durable)
	if err != nil {
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
