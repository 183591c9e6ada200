package indextest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

func delivery(sink, typ, key string) index.Delivery {
	o := obj(key)
	return index.Delivery{Sink: sink, Type: typ, Key: key, Blob: o.Blob, SHA256: o.SHA256, Size: o.Size,
		ContentType: o.ContentType, DocID: "doc", MediaID: "media", RequestID: "req-1", Reason: "test", Occurred: t0}
}

func enqueue(t *testing.T, x index.Index, ds ...index.Delivery) {
	t.Helper()
	update(t, x, func(tx index.Tx) error {
		for _, d := range ds {
			if err := tx.Enqueue(d); err != nil {
				return err
			}
		}
		return nil
	})
}

func claim(t *testing.T, x index.Index, sink string, limit int, lease time.Duration, now time.Time) []index.Delivery {
	t.Helper()
	ds, err := x.Claim(ctx, sink, limit, lease, now)
	if err != nil {
		t.Fatalf("claim %s: %v", sink, err)
	}
	return ds
}

func keysOf(ds []index.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Type+" "+d.Key)
	}
	return out
}

func stats(t *testing.T, x index.Index) []index.SinkStats {
	t.Helper()
	st, err := x.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testEnqueue(t *testing.T, x index.Index) {
	d := delivery("hook:a", index.ChangeCreated, "k")
	d.PrevBlob = "old"
	enqueue(t, x, d, delivery("hook:b", index.ChangeCreated, "k"))
	ds := claim(t, x, "hook:a", 10, time.Minute, t0)
	if len(ds) != 1 {
		t.Fatalf("claimed %d, want 1", len(ds))
	}
	got := ds[0]
	if got.EventID == "" || got.ID == 0 || got.Attempts != 1 || got.Sink != "hook:a" || got.PrevBlob != "old" ||
		got.Key != d.Key || got.Blob != d.Blob || got.SHA256 != d.SHA256 || got.Size != d.Size ||
		got.ContentType != d.ContentType || got.DocID != "doc" || got.MediaID != "media" ||
		got.RequestID != "req-1" || got.Reason != "test" || !got.Occurred.Equal(t0) || got.Type != index.ChangeCreated {
		t.Fatalf("claimed %+v, enqueued %+v", got, d)
	}
	other := claim(t, x, "hook:b", 10, time.Minute, t0)
	if len(other) != 1 || other[0].EventID == got.EventID {
		t.Fatalf("sink b: %+v (each delivery its own event id)", other)
	}
	// Not due before it occurred.
	enqueue(t, x, delivery("later", index.ChangeCreated, "k"))
	if ds := claim(t, x, "later", 10, time.Minute, t0.Add(-time.Second)); len(ds) != 0 {
		t.Fatalf("claimed before due: %+v", ds)
	}
	st := stats(t, x)
	want := []index.SinkStats{pending("hook:a", 1, 0), pending("hook:b", 1, 0), pending("later", 1, 0)}
	if !statsEqual(st, want) {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
}

// pending is the stats of a sink whose oldest pending delivery occurred at t0.
func pending(sink string, n, dead int) index.SinkStats {
	return index.SinkStats{Sink: sink, Pending: n, OldestPending: t0, Dead: dead}
}

func statsEqual(a, b []index.SinkStats) bool {
	return slices.EqualFunc(a, b, func(x, y index.SinkStats) bool {
		return x.Sink == y.Sink && x.Pending == y.Pending && x.Dead == y.Dead && x.OldestPending.Equal(y.OldestPending)
	})
}

func testCoalesce(t *testing.T, x index.Index) {
	enqueue(t, x, delivery("s", index.ChangeCreated, "k"))
	enqueue(t, x, delivery("s", index.ChangeUpdated, "k"))
	enqueue(t, x, delivery("s", index.ChangeUpdated, "k"))
	enqueue(t, x, delivery("s", index.ChangeUpdated, "other"))
	ds := claim(t, x, "s", 10, time.Minute, t0)
	if got := keysOf(ds); !slices.Equal(got, []string{index.ChangeCreated + " k", index.ChangeUpdated + " other"}) {
		t.Fatalf("coalesced: %q", got)
	}
	// A delivery being made (leased) is not replaced: the new version is
	// another event.
	enqueue(t, x, delivery("s", index.ChangeUpdated, "k"))
	ds2 := claim(t, x, "s", 10, time.Minute, t0)
	if got := keysOf(ds2); !slices.Equal(got, []string{index.ChangeUpdated + " k"}) {
		t.Fatalf("after a lease: %q", got)
	}
	// Nor is a deletion: an update after it is a new event.
	enqueue(t, x, delivery("d", index.ChangeDeleted, "k"), delivery("d", index.ChangeUpdated, "k"))
	if got := keysOf(claim(t, x, "d", 10, time.Minute, t0)); !slices.Equal(got,
		[]string{index.ChangeDeleted + " k", index.ChangeUpdated + " k"}) {
		t.Fatalf("after a deletion: %q", got)
	}
}

func testClaimLease(t *testing.T, x index.Index) {
	for _, k := range []string{"1", "2", "3"} {
		enqueue(t, x, delivery("s", index.ChangeCreated, k))
	}
	first := claim(t, x, "s", 2, time.Minute, t0)
	if got := keysOf(first); !slices.Equal(got, []string{index.ChangeCreated + " 1", index.ChangeCreated + " 2"}) {
		t.Fatalf("first claim: %q", got)
	}
	// Leased deliveries are not claimed again while the lease runs.
	second := claim(t, x, "s", 10, time.Minute, t0.Add(time.Second))
	if got := keysOf(second); !slices.Equal(got, []string{index.ChangeCreated + " 3"}) {
		t.Fatalf("second claim: %q", got)
	}
	if got := claim(t, x, "s", 10, time.Minute, t0.Add(2*time.Second)); len(got) != 0 {
		t.Fatalf("claimed leased deliveries: %q", keysOf(got))
	}
	// A lease that runs out gives them back, with the attempt counted.
	again := claim(t, x, "s", 10, time.Minute, t0.Add(2*time.Minute))
	if len(again) != 3 || again[0].Attempts != 2 || again[0].EventID != first[0].EventID {
		t.Fatalf("after the lease: %+v", again)
	}
}

func testFinishRetryDead(t *testing.T, x index.Index) {
	for _, k := range []string{"done", "retry", "dead"} {
		enqueue(t, x, delivery("s", index.ChangeCreated, k))
	}
	enqueue(t, x, delivery("other", index.ChangeCreated, "x"))
	ds := claim(t, x, "s", 10, time.Minute, t0)
	next := t0.Add(10 * time.Second)
	if err := x.Finish(ctx, []index.Outcome{
		{ID: ds[0].ID, Done: true},
		{ID: ds[1].ID, Next: next, Error: "503"},
		{ID: ds[2].ID, Dead: true, Error: "refused"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := x.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The retry waits for its time, but not for the lease it had.
	if got := claim(t, x, "s", 10, time.Minute, next.Add(-time.Millisecond)); len(got) != 0 {
		t.Fatalf("retry claimed early: %q", keysOf(got))
	}
	retried := claim(t, x, "s", 10, time.Minute, next)
	if got := keysOf(retried); !slices.Equal(got, []string{index.ChangeCreated + " retry"}) || retried[0].Attempts != 2 {
		t.Fatalf("retry: %+v", retried)
	}
	want := []index.SinkStats{pending("other", 1, 0), pending("s", 1, 1)}
	if st := stats(t, x); !statsEqual(st, want) {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	// Requeue: only dead letters, of the sink and event asked for.
	if n, err := x.Requeue(ctx, "other", "", next); err != nil || n != 0 {
		t.Fatalf("requeue other = %d, %v", n, err)
	}
	if n, err := x.Requeue(ctx, "s", "no-such-event", next); err != nil || n != 0 {
		t.Fatalf("requeue unknown event = %d, %v", n, err)
	}
	if n, err := x.Requeue(ctx, "", ds[2].EventID, next); err != nil || n != 1 {
		t.Fatalf("requeue = %d, %v", n, err)
	}
	dead := claim(t, x, "s", 10, time.Minute, next)
	if len(dead) != 1 || dead[0].Key != "dead" || dead[0].Attempts != 1 {
		t.Fatalf("requeued: %+v", dead)
	}
}

// testRelease: a consumer that alone claims a sink and restarts takes back
// what it held at once; other sinks' leases stand.
func testRelease(t *testing.T, x index.Index) {
	enqueue(t, x, delivery("mine", index.ChangeCreated, "a"), delivery("mine", index.ChangeCreated, "b"),
		delivery("theirs", index.ChangeCreated, "c"))
	if got := claim(t, x, "mine", 10, time.Hour, t0); len(got) != 2 {
		t.Fatalf("claimed %q", keysOf(got))
	}
	claim(t, x, "theirs", 10, time.Hour, t0)
	later := t0.Add(time.Minute)
	if got := claim(t, x, "mine", 10, time.Hour, later); len(got) != 0 {
		t.Fatalf("claimed under a live lease: %q", keysOf(got))
	}
	if n, err := x.Release(ctx, "mine"); err != nil || n != 2 {
		t.Fatalf("release = %d, %v; want 2", n, err)
	}
	got := claim(t, x, "mine", 10, time.Hour, later)
	if !slices.Equal(keysOf(got), []string{index.ChangeCreated + " a", index.ChangeCreated + " b"}) || got[0].Attempts != 2 {
		t.Fatalf("after release: %+v", got)
	}
	if got := claim(t, x, "theirs", 10, time.Hour, later); len(got) != 0 {
		t.Fatalf("another sink's lease was released: %q", keysOf(got))
	}
	if n, err := x.Release(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("release of an empty sink = %d, %v", n, err)
	}
}

func testSubscribe(t *testing.T, x index.Index) {
	a, cancelA := x.Subscribe()
	b, cancelB := x.Subscribe()
	defer cancelB()
	// A transaction that queues nothing wakes no one.
	put(t, x, obj("quiet"))
	select {
	case <-a:
		t.Fatal("woken by a change that queued no delivery")
	case <-time.After(50 * time.Millisecond):
	}
	enqueue(t, x, delivery("s", index.ChangeCreated, "k"))
	for name, c := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber %s not woken", name)
		}
	}
	cancelA()
	cancelA() // twice is harmless
	enqueue(t, x, delivery("s", index.ChangeCreated, "k2"))
	select {
	case <-b:
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber b not woken after a cancelled a")
	}
	select {
	case <-a:
		t.Fatal("cancelled subscriber woken")
	case <-time.After(50 * time.Millisecond):
	}
}

func testWatch(t *testing.T, x index.Index) {
	w := x.Watch()
	defer w.Close()
	v1, err := w.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put(t, x, obj("w"))
	v2, err := w.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v2 {
		t.Fatalf("version unchanged by a commit: %d", v1)
	}
	if err := x.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
