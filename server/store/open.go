package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"
)

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
		remote: opts.Remote, peers: opts.Peers, shared: opts.IndexURL != "", indexURL: opts.IndexURL, blobGrace: opts.BlobGrace,
		replicateSink: ReplicateSink, quotas: opts.Quotas, readCacheSize: opts.ReadCache}
	if s.shared {
		if s.remote == nil {
			return nil, errors.New("a shared index needs a storage backend that every node shares")
		}
		if opts.Node != "" {
			s.replicateSink = ReplicateSink + "@" + opts.Node
		}
		if s.blobGrace <= 0 {
			s.blobGrace = 10 * time.Minute
		}
		s.cache.off = true
	}
	s.writes = newWrites(s, opts)
	s.sinks = s.writes.sinks(s.sinks)
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

	if err := s.openTop(); err != nil {
		return err
	}
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
		if s.shardDirs[i], err = s.openDirFD(d); err != nil {
			return fmt.Errorf("open %s: %w", d, err)
		}
	}
	if s.tmpDir, err = s.openDirFD("tmp"); err != nil {
		return fmt.Errorf("open tmp: %w", err)
	}
	if err := s.sweepTemp(); err != nil {
		return err
	}
	if err := s.openCopies(); err != nil {
		return err
	}
	_, cleanErr := s.root.Stat("clean-shutdown")
	if s.shared {
		// The index is the record, and the other nodes' as much as ours:
		// nothing in this data directory can reconcile it. Only the spool
		// is ours: after a crash it may hold blobs of stores that never
		// committed.
		idx, err := openIndexAt(s.indexURL)
		if err != nil {
			return err
		}
		s.idx = idx
		if cleanErr != nil {
			if err := s.sweepSpool(context.Background()); err != nil {
				return fmt.Errorf("sweep the spool after an unclean stop: %w", err)
			}
		}
	} else if err := s.openLocalIndex(cleanErr == nil); err != nil {
		return err
	}
	if err := s.trackQuotas(context.Background()); err != nil {
		// Quotas are still enforced without it, each check summing its
		// folder, but racing stores may then pass one by an object each.
		s.log.Warn("cannot keep the usage of the quotas' folders in the index; each quota check reads its folder", "err", err)
	}
	if err := s.root.Remove("clean-shutdown"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove clean-shutdown marker: %w", err)
	}
	return s.syncDir(".")
}

// openLocalIndex opens the data directory's own index, and reconciles it
// with the objects tree unless the last stop was clean.
func (s *Store) openLocalIndex(clean bool) error {
	idx, fresh, err := s.openCheckedIndex()
	if err != nil {
		return err
	}
	s.idx = idx
	if fresh || !clean {
		// The index may lag the objects tree by the stores that were between
		// their sidecar rename and their index commit when the process died.
		start := time.Now()
		n, err := s.rebuild(context.Background())
		if err != nil {
			return fmt.Errorf("reconcile index after unclean stop: %w", err)
		}
		if n > 0 || !fresh {
			s.log.Info("index reconciled with the data directory", "objects", n, "duration_ms", time.Since(start).Milliseconds())
		}
	}
	return nil
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
	if s.copies != nil {
		// Not set to nil: a request that outlived the server may still ask.
		errs = append(errs, s.copies.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	for i, d := range s.shardDirs {
		if d != nil {
			errs = append(errs, d.close())
			s.shardDirs[i] = nil
		}
	}
	if s.tmpDir != nil {
		errs = append(errs, s.tmpDir.close())
		s.tmpDir = nil
	}
	if s.top != nil {
		errs = append(errs, s.top.close())
		s.top = nil
	}
	errs = append(errs, s.root.Close())
	return errors.Join(errs...)
}

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
