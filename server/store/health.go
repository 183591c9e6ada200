package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
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
	if _, err := s.root.Stat("index.db"); err != nil {
		return errors.New("the index (index.db) is gone from the data directory; restart to rebuild it")
	}
	var one int
	if err := s.idx.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("the index does not answer: %w", err)
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

// openCheckedIndex opens the index and checks it (PRAGMA quick_check). A
// corrupt one is moved aside, named with the time, and a new one is made:
// the caller rebuilds it from the sidecars (design invariant 5). What only
// the index held — WebDAV locks, hook deliveries not yet made — is lost with
// it, and the log says so.
func (s *Store) openCheckedIndex() (idx *index, fresh bool, err error) {
	path := filepath.Join(s.dir, "index.db")
	_, statErr := s.root.Stat("index.db")
	fresh = errors.Is(statErr, fs.ErrNotExist)
	idx, err = openIndex(path)
	if err == nil {
		err = idx.quickCheck()
		if err != nil {
			idx.Close()
		}
	}
	if err == nil || fresh {
		return idx, fresh, err
	}
	code := sqliteCode(err)
	if code != sqliteCorrupt && code != sqliteNotADB && !errors.Is(err, errCorruptIndex) {
		return nil, false, err
	}
	aside := "index.db.corrupt-" + strconv.FormatInt(time.Now().Unix(), 10)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if rerr := s.root.Rename("index.db"+suffix, aside+suffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("move corrupt index aside: %w", rerr)
		}
	}
	s.log.Error("the index was corrupt; moved it aside and rebuilding it from the sidecars "+
		"(WebDAV locks and undelivered hook events it held are lost)", "moved_to", aside, "err", err)
	idx, err = openIndex(path)
	return idx, true, err
}

var errCorruptIndex = errors.New("index failed its integrity check")

// quickCheck runs SQLite's quick_check over the whole index.
func (x *index) quickCheck() error {
	rows, err := x.w.Query(`PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("check index: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check index: %w", err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check index: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %v", errCorruptIndex, problems)
	}
	return nil
}
