package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

// concurrentPuts runs n Updates at once, each putting one object and
// failing (after its write) when fail says so, until a batch of more than one
// change has run; it returns each one's error. The first Update holds the
// connection until the others are queued, so that they form a batch.
func concurrentPuts(t *testing.T, x *DB, n int, fail func(i int) bool) []error {
	t.Helper()
	ctx := context.Background()
	errs := make([]error, n)
	started, queued := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[0] = x.Update(ctx, func(tx index.Tx) error {
			close(started)
			<-queued
			return putOne(tx, 0, fail)
		})
	}()
	<-started // the first holds the connection: queue the rest behind it
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = x.Update(ctx, func(tx index.Tx) error { return putOne(tx, i, fail) })
		}()
	}
	waitFor(t, func() bool { x.commits.mu.Lock(); defer x.commits.mu.Unlock(); return len(x.commits.waiting) == n-1 })
	close(queued)
	wg.Wait()
	return errs
}

func putOne(tx index.Tx, i int, fail func(int) bool) error {
	now := time.Now()
	o := index.Object{Key: fmt.Sprintf("b/%d", i), Blob: fmt.Sprintf("blob%d", i), Size: int64(i),
		Created: now, Updated: now, ModTime: now}
	if err := tx.PutObject(o); err != nil {
		return err
	}
	if err := tx.Enqueue(index.Delivery{Sink: "hook:t", Type: "created", Key: o.Key, Blob: o.Blob, Occurred: now}); err != nil {
		return err
	}
	if fail(i) {
		return fmt.Errorf("change %d refused", i)
	}
	return nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func openTemp(t *testing.T) *DB {
	x, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// checkPuts checks that exactly the changes that succeeded are in the index,
// objects and outbox rows alike.
func checkPuts(t *testing.T, x *DB, errs []error) {
	t.Helper()
	ctx := context.Background()
	want := 0
	for i, err := range errs {
		_, gerr := x.Get(ctx, fmt.Sprintf("b/%d", i))
		switch {
		case err == nil && gerr != nil:
			t.Errorf("change %d succeeded but its object is not in the index: %v", i, gerr)
		case err != nil && !errors.Is(gerr, index.ErrNotFound):
			t.Errorf("change %d failed (%v) but its object is in the index", i, err)
		}
		if err == nil {
			want++
		}
	}
	ds, err := x.Claim(ctx, "hook:t", 1000, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != want {
		t.Errorf("%d deliveries queued, want %d (one per change that succeeded)", len(ds), want)
	}
}

// TestBatchFailuresStayPerChange: in one batch, the changes whose fn fails
// are rolled back alone; their batch-mates commit.
func TestBatchFailuresStayPerChange(t *testing.T) {
	x := openTemp(t)
	var batches atomic.Int64
	batchHook = func(n int) error { batches.Add(1); return nil }
	t.Cleanup(func() { batchHook = nil })
	errs := concurrentPuts(t, x, 8, func(i int) bool { return i%3 == 1 })
	if batches.Load() == 0 {
		t.Fatal("no batch of more than one change ran")
	}
	for i, err := range errs {
		if (err != nil) != (i%3 == 1) {
			t.Errorf("change %d: got %v", i, err)
		}
	}
	checkPuts(t, x, errs)
}

// TestBatchCommitRefusedRetriesAlone: when a batch's COMMIT is refused, each
// change runs again in a transaction of its own and hears its own result.
func TestBatchCommitRefusedRetriesAlone(t *testing.T) {
	x := openTemp(t)
	var refused atomic.Int64
	batchHook = func(n int) error {
		refused.Add(1)
		return errors.New("commit refused")
	}
	t.Cleanup(func() { batchHook = nil })
	errs := concurrentPuts(t, x, 6, func(i int) bool { return i == 4 })
	if refused.Load() == 0 {
		t.Fatal("no batch was refused")
	}
	for i, err := range errs {
		if (err != nil) != (i == 4) {
			t.Errorf("change %d: got %v", i, err)
		}
	}
	checkPuts(t, x, errs)
}

// TestBatchAllSucceed: a batch whose changes all succeed commits them all in
// one transaction, each fn run once: the path without savepoints is taken
// and not left for the one with them.
func TestBatchAllSucceed(t *testing.T) {
	x := openTemp(t)
	var batches atomic.Int64
	batchHook = func(n int) error { batches.Add(1); return nil }
	t.Cleanup(func() { batchHook = nil })
	const n = 8
	var runs [n]atomic.Int64
	errs := concurrentPuts(t, x, n, func(i int) bool { runs[i].Add(1); return false })
	if batches.Load() == 0 {
		t.Fatal("no batch of more than one change ran")
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("change %d: %v", i, err)
		}
		if r := runs[i].Load(); r != 1 {
			t.Errorf("change %d ran %d times, want once", i, r)
		}
	}
	checkPuts(t, x, errs)
}
