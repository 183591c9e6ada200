package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// In a cluster (docs/cluster.md), nodes share the index and the backend, but
// in spool mode the bytes of an object stay in the spool of the node that
// accepted it until the replicator moves them on. Until then the other nodes
// read them from that node: Options.Peers is a read-only Backend over the
// other nodes' spools, asked only for blobs that neither the local spool nor
// the backend has.

// OpenLocalBlob opens a blob of this node's data directory, and nothing
// else: it is what a node serves its peers.
func (s *Store) OpenLocalBlob(blob string) (*os.File, error) {
	if len(blob) < 3 || strings.Trim(blob, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: bad blob name", ErrInvalidKey)
	}
	i, _ := strconv.ParseUint(blob[:2], 16, 8)
	f, err := s.shardDirs[i].open(blob)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// openElsewhere opens a blob this node does not hold: from the backend, or,
// in a cluster, from the node whose spool still holds it. A blob no one has
// is ErrNotFound; one that a node that cannot be reached may hold is
// ErrUnavailable, so that the client retries instead of hearing 404.
func (s *Store) openElsewhere(ctx context.Context, o Object) (ReadSeekCloser, error) {
	name := remoteBlob(o.Blob)
	if s.peers == nil {
		// The backend is the only other place: read it lazily.
		return &remoteReader{b: s.remote, name: name, size: o.Size}, nil
	}
	if _, err := s.remote.Stat(ctx, name); err == nil {
		return &remoteReader{b: s.remote, name: name, size: o.Size}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, remoteErr("stat blob", err)
	}
	if _, err := s.peers.Stat(ctx, name); err == nil {
		// Open before the caller answers: a peer that moved it on meanwhile
		// is read from the backend, not cut short after the headers.
		r := &remoteReader{b: s.peers, alt: s.remote, name: name, size: o.Size}
		if err := r.open(); err != nil {
			return nil, err
		}
		return r, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// The node that held it may have moved it on just now.
	if _, err := s.remote.Stat(ctx, name); err != nil {
		return nil, remoteErr("stat blob", err)
	}
	return &remoteReader{b: s.remote, name: name, size: o.Size}, nil
}

// pushFromPeer copies a blob that another node's spool holds to the
// backend: any node may replicate any object.
func (s *Store) pushFromPeer(ctx context.Context, blob string, size int64) error {
	if s.peers == nil {
		return fmt.Errorf("blob %s: %w", blob, ErrNotFound)
	}
	rc, err := s.peers.Open(ctx, remoteBlob(blob), 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := s.remote.Create(ctx, remoteBlob(blob), size)
	if err != nil {
		return remoteErr("create blob", err)
	}
	if n, err := io.Copy(w, rc); err != nil || n != size {
		w.Abort()
		if err == nil {
			err = fmt.Errorf("got %d of %d bytes from the peer", n, size)
		}
		return remoteErr("copy blob from peer", err)
	}
	return remoteErr("commit blob", w.Commit(ctx))
}
