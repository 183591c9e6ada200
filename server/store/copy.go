package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/pg"
	"github.com/attachd/attachd/server/index/sqlite"
)

// CopyIndex (attachd index copy) copies the SQLite index of a stopped data
// directory into a PostgreSQL index, for moving the node to a cluster
// (docs/cluster.md, "Moving a single node to a cluster"): folders, objects,
// live WebDAV locks and the outbox, pending and dead.
//
// It copies in batches, one target transaction each, in key (or ID) order,
// and records after each in copyStateFile, beside index.db, how far it got
// and into which database. Every batch can be copied twice without harm
// (objects are replaced, folders recorded if missing, deliveries taken in
// once), so a copy that was interrupted anywhere — between a batch's commit
// and the record of it included — is continued by running it again, and
// ends as an uninterrupted one would.
//
// A target that holds anything is refused, unless it is the target of an
// interrupted copy of this data directory that attachd has not run on since.

// copyStateFile records a copy's progress in the data directory.
const copyStateFile = "index-copy.json"

// Phases of a copy, in order.
const (
	copyFolders    = "folders"
	copyObjects    = "objects"
	copyLocks      = "locks"
	copyDeliveries = "deliveries"
	copyDone       = "done"
)

// CopyOptions are the choices of CopyIndex.
type CopyOptions struct {
	// Node names this node in the cluster (the Node of its Options there):
	// deliveries to ReplicateSink are renamed to its own sink,
	// ReplicateSink@Node, which only it claims. A source with such
	// deliveries is refused without it.
	Node string
	// Batch is how many folders, objects or deliveries one transaction of
	// the target takes (default 1000).
	Batch int
	// Progress, if set, is called after each batch. Cancelling the copy's
	// context from it stops the copy there.
	Progress func(CopyProgress)
}

// CopyCounts counts what a copy carries.
type CopyCounts struct {
	Objects    int64 `json:"objects"`
	Folders    int64 `json:"folders"`
	Locks      int64 `json:"locks"`
	Deliveries int64 `json:"deliveries"`
	// Bytes is the size of the objects (attachd migrate; not counted by
	// CopyIndex).
	Bytes int64 `json:"bytes,omitempty"`
}

// CopyProgress is how far a copy got.
type CopyProgress struct {
	Phase string     // "folders", "objects", "locks", "deliveries" or "done"
	Done  CopyCounts // copied so far, in earlier runs of an interrupted copy too
	Total CopyCounts // in the source (locks: the live ones)
}

// CopyResult is what a finished copy carried.
type CopyResult struct {
	CopyCounts
	// Resumed is a copy that continued an interrupted one.
	Resumed bool
	// Replicating counts the deliveries of ReplicateSink: objects still in
	// this node's spool, not yet in the backend. Only this node can move
	// them on, so they need CopyOptions.Node.
	Replicating int64
	// RenamedTo is the sink they were renamed to (CopyOptions.Node).
	RenamedTo string
}

// copyState is the content of copyStateFile.
type copyState struct {
	Target  string     `json:"target"`         // the target's URL, its password hidden
	Source  int64      `json:"source"`         // the modification time of clean-shutdown: the data directory as it was
	Node    string     `json:"node,omitempty"` // CopyOptions.Node
	Phase   string     `json:"phase"`          // the phase under way
	After   string     `json:"after"`          // the last folder or object copied in Phase
	AfterID int64      `json:"after_id"`       // the last delivery copied
	Done    CopyCounts `json:"done"`
	Started time.Time  `json:"started"`
}

// CopyIndex copies the index of the data directory dir into the PostgreSQL
// index at url (see above). The data directory must be stopped cleanly, and
// is locked while the copy runs. No error shows url's password.
func CopyIndex(ctx context.Context, dir, url string, opts CopyOptions) (CopyResult, error) {
	var res CopyResult
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	unlock, source, err := lockStopped(dir)
	if err != nil {
		return res, err
	}
	defer unlock()
	src, err := sqlite.OpenExisting(filepath.Join(dir, "index.db"))
	if err != nil {
		return res, err
	}
	defer src.Close()
	dst, err := openIndexAt(url)
	if err != nil {
		return res, err
	}
	defer dst.Close()
	target := pg.Redact(url)

	c := &indexCopy{ctx: ctx, dir: dir, src: src, dst: dst, opts: opts, now: time.Now()}
	if err := c.count(); err != nil {
		return res, err
	}
	for _, st := range c.srcStats {
		if st.Sink == ReplicateSink {
			res.Replicating = int64(st.Pending + st.Dead)
		}
	}
	if res.Replicating > 0 && opts.Node == "" {
		// In a cluster a node replicates its spool under a sink of its own,
		// and none claims ReplicateSink.
		return res, fmt.Errorf("%d objects are still in the spool of %s, not yet in the backend: name the node "+
			"this data directory will be in the cluster (--node-url, its [cluster] advertise_url), so that it moves "+
			"them on there; or run attachd here until `attachd hooks status` shows no replicate queue", res.Replicating, dir)
	}
	prev, err := readCopyState(dir)
	if err != nil {
		return res, err
	}
	held, err := c.held()
	if err != nil {
		return res, err
	}
	switch {
	case held == (CopyCounts{}):
		c.st = copyState{Target: target, Source: source, Node: opts.Node, Phase: copyFolders, Started: c.now.UTC()}
		if err := c.save(); err != nil { // before the first batch: the target is never left unaccounted for
			return res, err
		}
	case prev == nil || prev.Target != target:
		return res, fmt.Errorf("the PostgreSQL index at %s already holds %s, and no interrupted copy of %s into it "+
			"is on record: copy into an empty database", target, describe(held), dir)
	case prev.Phase == copyDone:
		return res, fmt.Errorf("%s was copied into the PostgreSQL index at %s already (%s began %s): "+
			"to copy it again, empty that database first", dir, target, copyStateFile, prev.Started.Format(time.RFC3339))
	case prev.Source != source:
		return res, fmt.Errorf("attachd has run on %s since its copy into %s was interrupted, so the copy cannot be "+
			"continued: empty that database (it holds %s) and copy again", dir, target, describe(held))
	case prev.Node != opts.Node:
		return res, fmt.Errorf("the interrupted copy into %s renamed this node's replication for node %q, "+
			"not %q: run it again with the same --node-url", target, prev.Node, opts.Node)
	default:
		c.st, res.Resumed = *prev, true
	}

	for _, step := range []struct {
		phase string
		run   func() error
	}{{copyFolders, c.folders}, {copyObjects, c.objects}, {copyLocks, c.locks}, {copyDeliveries, c.deliveries}} {
		if c.st.Phase != step.phase {
			continue
		}
		if err := step.run(); err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("copy interrupted (%d of %d objects copied): run the same command again to continue",
					c.st.Done.Objects, c.total.Objects)
			}
			return res, fmt.Errorf("copy %s: %w; run the same command again to continue where it stopped", step.phase, err)
		}
		c.st.Phase, c.st.After, c.st.AfterID = nextPhase(step.phase), "", 0
		if err := c.save(); err != nil {
			return res, err
		}
	}
	c.progress()
	res.CopyCounts = c.st.Done
	if opts.Node != "" {
		res.RenamedTo = ReplicateSink + "@" + opts.Node
	}
	return res, nil
}

func nextPhase(p string) string {
	switch p {
	case copyFolders:
		return copyObjects
	case copyObjects:
		return copyLocks
	case copyLocks:
		return copyDeliveries
	}
	return copyDone
}

// describe says what an index holds.
func describe(n CopyCounts) string {
	var parts []string
	for _, p := range []struct {
		n    int64
		what string
	}{{n.Objects, "objects"}, {n.Folders, "folders"}, {n.Locks, "locks"}, {n.Deliveries, "deliveries"}} {
		if p.n > 0 {
			parts = append(parts, strconv.FormatInt(p.n, 10)+" "+p.what)
		}
	}
	return strings.Join(parts, ", ")
}

// lockStopped takes the lock of the data directory dir, which a running
// attachd holds, and returns the func that releases it and the time of the
// data directory's last clean stop. A data directory whose last stop was
// not clean may have an index that lags its objects tree: it is refused.
func lockStopped(dir string) (unlock func(), stopped int64, err error) {
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err != nil {
		return nil, 0, fmt.Errorf("%s holds no index (index.db) to copy: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		return nil, 0, fmt.Errorf("data directory %s is in use by attachd (pid %s): stop attachd first", dir, pid)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	fi, err := os.Stat(filepath.Join(dir, "clean-shutdown"))
	if err != nil {
		f.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("attachd did not stop cleanly on %s, so its index may lag its objects: "+
				"start attachd on it and stop it again (which reconciles them), then copy", dir)
		}
		return nil, 0, err
	}
	return func() { f.Close() }, fi.ModTime().UnixNano(), nil
}

func readCopyState(dir string) (*copyState, error) { return readState[copyState](dir, copyStateFile) }

// indexCopy is one run of CopyIndex.
type indexCopy struct {
	ctx      context.Context
	dir      string
	src      *sqlite.DB
	dst      index.Index
	opts     CopyOptions
	now      time.Time // locks live then are copied
	st       copyState
	total    CopyCounts
	srcStats []index.SinkStats
}

// save records the copy's progress, atomically.
func (c *indexCopy) save() error {
	if err := writeState(c.dir, copyStateFile, c.st); err != nil {
		return fmt.Errorf("record the copy's progress: %w", err)
	}
	return nil
}

func (c *indexCopy) progress() {
	if c.opts.Progress != nil {
		c.opts.Progress(CopyProgress{Phase: c.st.Phase, Done: c.st.Done, Total: c.total})
	}
}

// count counts what the source holds.
func (c *indexCopy) count() error {
	n, err := countIndex(c.ctx, c.src, c.now)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(c.dir, "index.db"), err)
	}
	c.total = n
	c.srcStats, err = c.src.OutboxStats(c.ctx)
	return err
}

// held counts what the target holds already.
func (c *indexCopy) held() (CopyCounts, error) {
	n, err := countIndex(c.ctx, c.dst, c.now)
	if err != nil {
		return n, fmt.Errorf("read the target: %w", err)
	}
	return n, nil
}

func countIndex(ctx context.Context, x index.Index, now time.Time) (CopyCounts, error) {
	var n CopyCounts
	ex, ok := x.(index.Exporter)
	if !ok {
		return n, fmt.Errorf("%T cannot be read out", x)
	}
	if err := x.Walk(ctx, "", func(index.Object) error { n.Objects++; return nil }); err != nil {
		return n, err
	}
	if err := ex.Dirs(ctx, "", func(index.Dir) error { n.Folders++; return nil }); err != nil {
		return n, err
	}
	locks, err := x.Locks(ctx, "", true, now)
	if err != nil {
		return n, err
	}
	n.Locks = int64(len(locks))
	stats, err := x.OutboxStats(ctx)
	if err != nil {
		return n, err
	}
	for _, st := range stats {
		n.Deliveries += int64(st.Pending + st.Dead)
	}
	return n, nil
}

// batched calls flush with each batch of what each gathers, and when read
// ends; it stops when flush fails or the context is cancelled.
func batched[T any](c *indexCopy, read func(each func(T) error) error, flush func([]T) error) error {
	var batch []T
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := flush(batch); err != nil {
			return err
		}
		batch = batch[:0]
		if err := c.save(); err != nil {
			return err
		}
		c.progress()
		return c.ctx.Err()
	}
	err := read(func(v T) error {
		batch = append(batch, v)
		if len(batch) < c.opts.Batch {
			return nil
		}
		return send()
	})
	if err != nil {
		return err
	}
	return send()
}

// folders copies the folders, parents first: each is recorded with its
// times if missing, then given its properties.
func (c *indexCopy) folders() error {
	return batched(c, func(each func(index.Dir) error) error {
		return c.src.Dirs(c.ctx, c.st.After, each)
	}, func(ds []index.Dir) error {
		err := c.dst.Update(c.ctx, func(tx index.Tx) error {
			for _, d := range ds {
				if err := tx.PutDirs(d.Key, time.Unix(0, d.Created)); err != nil {
					return err
				}
				if err := tx.UpdateDir(d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		c.st.After = ds[len(ds)-1].Key
		c.st.Done.Folders += int64(len(ds))
		return nil
	})
}

// objects copies the objects, in key order, after the last one copied.
func (c *indexCopy) objects() error {
	after := c.st.After
	return batched(c, func(each func(index.Object) error) error {
		return c.src.Walk(c.ctx, "", func(o index.Object) error {
			if after != "" && o.Key <= after {
				return nil
			}
			return each(o)
		})
	}, func(objs []index.Object) error {
		err := c.dst.Update(c.ctx, func(tx index.Tx) error {
			for _, o := range objs {
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		c.st.After = objs[len(objs)-1].Key
		c.st.Done.Objects += int64(len(objs))
		return nil
	})
}

// locks copies the locks live now that the target does not hold yet.
func (c *indexCopy) locks() error {
	locks, err := c.src.Locks(c.ctx, "", true, c.now)
	if err != nil {
		return err
	}
	for _, l := range locks {
		if _, err := c.dst.LockByToken(c.ctx, l.Token, c.now); err == nil {
			continue
		} else if !errors.Is(err, index.ErrNotFound) {
			return err
		}
		if err := c.dst.CreateLock(c.ctx, l, c.now); err != nil {
			return fmt.Errorf("lock %s on %q: %w", l.Token, UnescapeKey(l.Root), err)
		}
	}
	c.st.Done.Locks = int64(len(locks))
	return nil
}

// deliveries copies the outbox, in ID order, after the last one copied.
func (c *indexCopy) deliveries() error {
	im, ok := c.dst.(index.Importer)
	if !ok {
		return fmt.Errorf("%T cannot take in deliveries", c.dst)
	}
	return batched(c, func(each func(index.QueuedDelivery) error) error {
		return c.src.Deliveries(c.ctx, c.st.AfterID, each)
	}, func(qs []index.QueuedDelivery) error {
		last := qs[len(qs)-1].ID
		if c.opts.Node != "" {
			for i := range qs {
				if qs[i].Sink == ReplicateSink {
					qs[i].Sink = ReplicateSink + "@" + c.opts.Node
				}
			}
		}
		if _, err := im.ImportDeliveries(c.ctx, qs); err != nil {
			return err
		}
		c.st.AfterID = last
		c.st.Done.Deliveries += int64(len(qs))
		return nil
	})
}
