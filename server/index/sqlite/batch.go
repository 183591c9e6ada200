package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Group commit. Every change of the index goes through the one write
// connection, so concurrent Updates queue for it anyway. Rather than one
// transaction each, the caller that finds the connection free commits, in
// one transaction, every change queued meanwhile: one BEGIN and one COMMIT,
// each page the batch touches written to the WAL once. Each waiter hears its
// own result only after the batch is committed, so an Update still returns
// only once its change is in the index.
//
// A change's failure stays its own. Changes nearly always succeed, so a
// batch runs first without savepoints; if a change fails, it runs again
// with each change inside a savepoint, and one whose fn fails is rolled back
// to it while its batch-mates go on. If the batch itself fails (its COMMIT,
// or a rollback to a savepoint, is refused) the transaction is rolled back
// and every change in it runs again alone, so each hears the error of its
// own transaction. An fn may therefore run more than once; it must not
// carry anything over from an earlier run.

// maxBatch bounds a batch, so that the first change of a long queue is not
// kept waiting for the last.
const maxBatch = 128

// commitQueue holds the changes waiting for the write connection.
type commitQueue struct {
	mu      sync.Mutex
	waiting []*change
	busy    bool // a caller is committing; it hands over to the next waiter
}

type change struct {
	ctx  context.Context
	fn   func(*tx) error
	done chan error // the result; or errLead: commit the queue
}

var errLead = errors.New("sqlite: commit the queue")

// batchHook, if set by a test, runs before a batch of more than one change
// commits; an error it returns fails the batch as a refused COMMIT would.
var batchHook func(n int) error

func (x *DB) update(ctx context.Context, fn func(*tx) error) error {
	ctx = context.WithoutCancel(ctx)
	c := &change{ctx: ctx, fn: fn, done: make(chan error, 1)}
	q := &x.commits
	q.mu.Lock()
	q.waiting = append(q.waiting, c)
	lead := !q.busy
	q.busy = true
	q.mu.Unlock()
	if !lead {
		if err := <-c.done; err != errLead {
			return err
		}
	}
	// This caller commits: the queue holds its own change first.
	q.mu.Lock()
	n := min(len(q.waiting), maxBatch)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	q.mu.Unlock()

	x.commitBatch(batch)

	q.mu.Lock()
	if len(q.waiting) > 0 {
		q.waiting[0].done <- errLead
	} else {
		q.busy = false
		q.waiting = nil
	}
	q.mu.Unlock()
	return <-c.done
}

// commitBatch runs batch and answers each of its changes.
func (x *DB) commitBatch(batch []*change) {
	defer x.preparePending()
	if len(batch) == 1 {
		batch[0].done <- x.commitOne(batch[0].ctx, batch[0].fn)
		return
	}
	errs, err := x.commitTogether(batch, false)
	if err == errChangeFailed {
		errs, err = x.commitTogether(batch, true)
	}
	if err != nil {
		// The batch failed as a whole: each change alone hears its own error.
		for _, c := range batch {
			c.done <- x.commitOne(c.ctx, c.fn)
		}
		return
	}
	for i, c := range batch {
		c.done <- errs[i]
	}
}

// commitOne runs fn in a transaction of its own.
func (x *DB) commitOne(ctx context.Context, fn func(*tx) error) error {
	sqlTx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return fullErr(fmt.Errorf("index: begin: %w", err))
	}
	t := &tx{x: x, ctx: ctx, tx: sqlTx}
	if err := fn(t); err != nil {
		sqlTx.Rollback()
		return fullErr(err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fullErr(fmt.Errorf("index: commit: %w", err))
	}
	if t.enqueued {
		x.changes.Notify()
	}
	return nil
}

// errChangeFailed is commitTogether's answer when a change failed and the
// batch ran without savepoints: nothing committed, run it again with them.
var errChangeFailed = errors.New("sqlite: a change of the batch failed")

// commitTogether runs the changes of batch in one transaction and returns
// each one's error. An error of its own means the transaction is rolled back
// and nothing of the batch committed. With isolate, each change runs in a
// savepoint (two statements more) and one that fails is rolled back alone;
// without, a change that fails rolls back the transaction: errChangeFailed.
func (x *DB) commitTogether(batch []*change, isolate bool) ([]error, error) {
	ctx := batch[0].ctx
	sqlTx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("index: begin: %w", err)
	}
	bt := &tx{x: x, ctx: ctx, tx: sqlTx}
	errs := make([]error, len(batch))
	enqueued := false
	for i, c := range batch {
		if isolate {
			if _, err := bt.exec(`SAVEPOINT change`); err != nil {
				sqlTx.Rollback()
				return nil, fmt.Errorf("index: savepoint: %w", err)
			}
		}
		t := &tx{x: x, ctx: c.ctx, tx: sqlTx}
		if errs[i] = c.fn(t); errs[i] != nil {
			if !isolate {
				sqlTx.Rollback()
				return nil, errChangeFailed
			}
			errs[i] = fullErr(errs[i])
			if _, err := bt.exec(`ROLLBACK TO change`); err != nil {
				sqlTx.Rollback()
				return nil, fmt.Errorf("index: rollback to savepoint: %w", err)
			}
		}
		if isolate {
			if _, err := bt.exec(`RELEASE change`); err != nil {
				sqlTx.Rollback()
				return nil, fmt.Errorf("index: release savepoint: %w", err)
			}
		}
		enqueued = enqueued || (t.enqueued && errs[i] == nil)
	}
	if batchHook != nil {
		if err := batchHook(len(batch)); err != nil {
			sqlTx.Rollback()
			return nil, err
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, fmt.Errorf("index: commit: %w", err)
	}
	if enqueued {
		x.changes.Notify()
	}
	return errs, nil
}
