package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Stat returns the object stored at key, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (Object, error) {
	return s.get(ctx, key)
}

// Discover looks for an object the index does not know in the remote
// backend, where another attachd sharing it may have stored it, and indexes
// it. Without a remote backend it is Stat.
//
// With a shared index, the index is the one truth: an object it does not
// know is not there, even if its sidecar in the backend has yet to be
// deleted.
func (s *Store) Discover(ctx context.Context, key string) (Object, error) {
	o, err := s.get(ctx, key)
	if errors.Is(err, ErrNotFound) && s.remote != nil && !s.shared {
		return s.statRemote(ctx, key)
	}
	return o, err
}

// DiscoverPrefix is LongestPrefix over the remote backend's objects too.
func (s *Store) DiscoverPrefix(ctx context.Context, key string) (Object, error) {
	o, err := s.LongestPrefix(ctx, key)
	if errors.Is(err, ErrNotFound) && s.remote != nil && !s.shared {
		for _, p := range Parents(key) {
			if o, err := s.statRemote(ctx, p); !errors.Is(err, ErrNotFound) {
				return o, err
			}
		}
	}
	return o, err
}

// LongestPrefix returns the stored object whose key is the longest proper
// prefix of key on a segment boundary, or ErrNotFound.
func (s *Store) LongestPrefix(ctx context.Context, key string) (Object, error) {
	return s.longest(ctx, Parents(key))
}

// FindByID returns the object whose Kazoo media id or document id is id, or
// ErrNotFound. Of several, it prefers one below the folder under, then the
// most recently stored.
func (s *Store) FindByID(ctx context.Context, id, under string) (Object, error) {
	if id == "" {
		return Object{}, ErrNotFound
	}
	return lookup(s.idx.ByID(ctx, id, under))
}

// ReadSeekCloser is an open object's bytes.
type ReadSeekCloser interface {
	io.ReadSeekCloser
}

// Open opens the bytes of the object at key. The version opened stays
// readable until closed, even if it is replaced or deleted meanwhile.
func (s *Store) Open(ctx context.Context, key string) (ReadSeekCloser, Object, error) {
	for range 3 {
		o, err := s.get(ctx, key)
		if err != nil {
			return nil, o, err
		}
		f, err := s.OpenVersion(o)
		if errors.Is(err, ErrNotFound) {
			// Replaced between the lookup and the open (look again), or lost.
			s.cache.drop(key)
			if cur, cerr := s.idx.Get(ctx, key); cerr == nil && cur.Blob == o.Blob {
				return nil, o, s.corrupt(o)
			}
			continue
		}
		return f, o, err
	}
	return nil, Object{}, fmt.Errorf("open %q: replaced too often while opening", UnescapeKey(key))
}

// OpenVersion opens the bytes of the version o describes.
func (s *Store) OpenVersion(o Object) (ReadSeekCloser, error) {
	var f *os.File
	var err error
	if i, perr := strconv.ParseUint(o.Blob[:2], 16, 8); perr == nil && len(o.Blob) > 2 {
		f, err = s.shardDirs[i].open(o.Blob)
	} else {
		err = fmt.Errorf("bad blob name %q", o.Blob)
	}
	if errors.Is(err, fs.ErrNotExist) && s.remote != nil {
		if c, ok := s.openCopy(o); ok {
			return c, nil
		}
		// Moved on from the spool, or in another node's: read it from there.
		r, err := s.openElsewhere(context.Background(), o)
		if err != nil {
			return nil, err
		}
		return s.copying(r, o), nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open blob of %q: %w", UnescapeKey(o.Key), err)
	}
	return f, nil
}

// Absent reports whether nothing, object or folder, is at key, when that is
// known without the index: the objects tree of this data directory mirrors
// it (a change places a sidecar or a folder before its index row, and
// removes it before the row goes), so a key with nothing in the tree is new.
// A writer asks it first to skip the index reads that would find nothing.
// false means "ask the index" (with a shared index, or a change in doubt).
func (s *Store) Absent(key string) bool {
	if s.shared || s.inDoubt.Load() || key == "" {
		return false
	}
	if s.top == nil {
		_, err := s.root.Lstat("objects/" + key)
		return errors.Is(err, fs.ErrNotExist)
	}
	fd, err := s.beneath("objects/"+key, lookupOnly|unix.O_NOFOLLOW)
	if err == nil {
		unix.Close(fd)
	}
	return errors.Is(err, fs.ErrNotExist)
}

// DirExists reports whether the folder at key exists; the root always does.
// A folder a store has just put an object in is known without the index.
func (s *Store) DirExists(ctx context.Context, key string) (bool, error) {
	if key == "" || s.knownDir(key) {
		return true, nil
	}
	_, err := s.StatDir(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}
