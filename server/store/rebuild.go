package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/attachd/attachd/server/index"
)

// Reindex rebuilds the index of the data directory dir from its objects tree,
// and removes blobs that no object names. The server must not be running on dir.
func Reindex(ctx context.Context, dir string, opts Options) (int, error) {
	s, err := Open(dir, opts) // Open reconciles when the last stop was unclean
	if err != nil {
		return 0, err
	}
	if s.shared {
		n, err := s.reindexShared(ctx)
		return n, errors.Join(err, s.Close())
	}
	if s.remote != nil {
		if _, err := s.reindexRemote(ctx); err != nil {
			return 0, errors.Join(err, s.Close())
		}
	}
	n, err := s.rebuild(ctx)
	return n, errors.Join(err, s.Close())
}

// rebuild replaces the index's objects and folders with what the objects tree
// holds, in one transaction, then removes unreferenced blobs. Dead properties
// of folders, which have no sidecar, are kept for folders that still exist.
func (s *Store) rebuild(ctx context.Context) (int, error) {
	s.tree.Lock()
	defer s.tree.Unlock()
	defer s.forgetAll()
	var r rebuilder
	err := s.update(ctx, func(tx index.Tx) error {
		r = rebuilder{s: s, tx: tx, referenced: map[string]bool{}, seen: map[string]bool{}}
		if err := tx.ClearObjects(); err != nil {
			return err
		}
		if err := fs.WalkDir(s.root.FS(), "objects", r.visit); err != nil {
			return fmt.Errorf("walk objects: %w", err)
		}
		return tx.PruneDirs(func(key string) bool { return r.seen[key] })
	})
	if err != nil {
		return 0, err
	}
	for _, key := range r.lost {
		if err := s.moveToLost(key); err != nil {
			return r.count, err
		}
	}
	return r.count, s.sweepBlobs(r.referenced)
}

// rebuilder indexes what it finds in the objects tree.
type rebuilder struct {
	s          *Store
	tx         index.Tx
	count      int
	referenced map[string]bool // blobs named by a sidecar
	seen       map[string]bool // folders
	lost       []string        // sidecars to move to lost/
}

func (r *rebuilder) visit(path string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	s := r.s
	key := strings.TrimPrefix(strings.TrimPrefix(path, "objects"), "/")
	if d.IsDir() {
		if key == "" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		r.seen[key] = true
		return r.tx.PutDirs(key, fi.ModTime())
	}
	if !d.Type().IsRegular() {
		s.log.Warn("reindex: skipping what is not a regular file", "file", path)
		return nil
	}
	o, err := s.readSidecar(key)
	if err != nil {
		s.log.Error("reindex: unreadable sidecar; moved to lost/", "key", UnescapeKey(key), "err", err)
		r.lost = append(r.lost, key)
		return nil
	}
	if _, err := s.root.Stat(blobPath(o.Blob)); err != nil && s.remote == nil {
		s.log.Error("reindex: corruption: sidecar names a missing blob; moved to lost/",
			"key", UnescapeKey(key), "blob", o.Blob, "sha256", o.SHA256)
		r.lost = append(r.lost, key)
		return nil
	}
	r.referenced[o.Blob] = true
	r.count++
	return r.tx.PutObject(o)
}

// moveToLost moves the sidecar of key out of the objects tree into lost/,
// where an operator can inspect it: it is no object (its bytes are gone or
// it cannot be read), but it may say what was lost.
func (s *Store) moveToLost(key string) error {
	parent, _ := Split(key)
	p := &placement{s: s}
	if err := s.mkdirAllFor(p, join("lost", parent)); err != nil {
		return fmt.Errorf("move sidecar of %q to lost/: %w", UnescapeKey(key), err)
	}
	if err := s.root.Rename("objects/"+key, "lost/"+key); err != nil {
		return fmt.Errorf("move sidecar of %q to lost/: %w", UnescapeKey(key), mapErr(err))
	}
	return s.syncDir(join("objects", parent))
}

// sweepBlobs removes blob files no object names: versions replaced or deleted
// when the process died before it could remove them, and copies never committed.
func (s *Store) sweepBlobs(referenced map[string]bool) error {
	removed := 0
	for i := 0; i < 256; i++ {
		dir := fmt.Sprintf("blobs/%02x", i)
		entries, err := fs.ReadDir(s.root.FS(), dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			if !referenced[e.Name()] {
				if err := s.root.Remove(dir + "/" + e.Name()); err == nil {
					removed++
				}
			}
		}
	}
	if removed > 0 {
		s.log.Info("removed blobs no object names", "count", removed)
	}
	return nil
}
