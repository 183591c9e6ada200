package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/attachd/attachd/server/index"
)

// reindexShared rebuilds a shared index from the backend alone: its sidecars
// name every object that was moved there (docs/cluster.md, "Rebuilding the
// index"). Each page of sidecars is one transaction, so no transaction holds
// the index while the backend is read; objects the backend does not name are
// removed at the end. Folders, locks and deliveries are kept. Every node
// must be stopped, and spools drained, or what they hold is not found.
func (s *Store) reindexShared(ctx context.Context) (int, error) {
	seen := map[string]bool{}
	n, cursor := 0, ""
	for {
		page, next, err := s.remote.List(ctx, "objects/", cursor, 500)
		if err != nil {
			return n, remoteErr("list sidecars", err)
		}
		var objs []Object
		for _, bi := range page {
			o, err := s.readRemoteSidecar(ctx, bi.Name)
			if err != nil {
				if errors.Is(err, ErrUnavailable) {
					return n, err
				}
				s.log.Warn("reindex: skipping unreadable sidecar in the backend", "sidecar", bi.Name, "err", err)
				continue
			}
			if _, err := s.remote.Stat(ctx, remoteBlob(o.Blob)); errors.Is(err, ErrNotFound) {
				s.log.Error("reindex: corruption: sidecar in the backend names a missing blob; left out",
					"key", UnescapeKey(o.Key), "blob", o.Blob, "sha256", o.SHA256)
				continue
			} else if err != nil {
				return n, remoteErr("stat blob", err)
			}
			objs = append(objs, o)
			seen[o.Key] = true
		}
		if err := s.update(ctx, func(tx index.Tx) error {
			for _, o := range objs {
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return n, fmt.Errorf("reindex: %w", err)
		}
		n += len(objs)
		if next == "" {
			break
		}
		cursor = next
	}
	return n, s.dropUnseen(ctx, seen)
}

// dropUnseen removes from the index the objects that are not in seen.
func (s *Store) dropUnseen(ctx context.Context, seen map[string]bool) error {
	var gone []string
	if err := s.idx.Walk(ctx, "", func(o Object) error {
		if !seen[o.Key] {
			gone = append(gone, o.Key)
		}
		return nil
	}); err != nil {
		return readErr(err)
	}
	for len(gone) > 0 {
		batch := gone[:min(len(gone), 500)]
		gone = gone[len(batch):]
		if err := s.update(ctx, func(tx index.Tx) error {
			for _, key := range batch {
				if err := tx.DeleteObject(key); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
	}
	return nil
}

// readRemoteSidecar reads and decodes the sidecar at name in the backend.
func (s *Store) readRemoteSidecar(ctx context.Context, name string) (Object, error) {
	rc, err := s.remote.Open(ctx, name, 0, 1<<20)
	if err != nil {
		return Object{}, remoteErr("read sidecar", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return Object{}, remoteErr("read sidecar", err)
	}
	return decodeSidecar(name[len("objects/"):], b)
}
