package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// ErrCorrupt is an object whose bytes are missing from the data directory:
// its sidecar names a blob that is not there. Nothing a client did causes it,
// so front ends answer 500 (docs/design.md, "Corruption"); the server logs it
// once per object, and reindex moves the sidecar to lost/.
var ErrCorrupt = errors.New("the object's bytes are missing from the data directory")

// reported remembers the blobs already logged as lost, so that a client
// fetching a broken object in a loop does not flood the log. It holds at most
// maxReported entries; past that each is logged again.
var reported struct {
	sync.Mutex
	m map[string]bool
}

const maxReported = 10000

func (s *Store) corrupt(o Object) error {
	reported.Lock()
	seen := reported.m[s.dir+"\x00"+o.Blob]
	if !seen && len(reported.m) < maxReported {
		if reported.m == nil {
			reported.m = map[string]bool{}
		}
		reported.m[s.dir+"\x00"+o.Blob] = true
	}
	reported.Unlock()
	if !seen {
		s.log.Error("corruption: an object's bytes are missing; run `attachd reindex` to move its record to lost/",
			"key", UnescapeKey(o.Key), "blob", o.Blob, "size", o.Size, "sha256", o.SHA256)
	}
	return fmt.Errorf("%w: %q", ErrCorrupt, UnescapeKey(o.Key))
}

// checkBlob reports ErrCorrupt if the local blob of o is missing and there is
// no backend it could have moved on to.
func (s *Store) checkBlob(o Object) error {
	if s.remote != nil {
		return nil
	}
	if _, err := s.root.Stat(blobPath(o.Blob)); errors.Is(err, fs.ErrNotExist) {
		return s.corrupt(o)
	} else if err != nil {
		return fmt.Errorf("stat blob of %q: %w", UnescapeKey(o.Key), mapErr(err))
	}
	return nil
}

// Check reports whether the store can take uploads: the data directory is
// writable and the index is in place and answers. /readyz asks it.
func (s *Store) Check(ctx context.Context) error {
	if err := s.idx.Check(ctx); err != nil {
		return err
	}
	name := "tmp/" + newVersion() + ".probe"
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("the data directory cannot be written: %w", mapErr(err))
	}
	f.Close()
	if err := s.root.Remove(name); err != nil {
		return fmt.Errorf("the data directory cannot be written: %w", mapErr(err))
	}
	return nil
}
