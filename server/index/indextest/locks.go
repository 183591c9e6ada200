package indextest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

func lock(token, root string, zeroDepth, shared bool) index.Lock {
	return index.Lock{Token: token, Root: root, ZeroDepth: zeroDepth, Shared: shared,
		Owner: "<D:href>me</D:href>", User: "alice", Created: t0, Expires: t0.Add(time.Minute)}
}

func tokens(t *testing.T, x index.Index, key string, below bool, now time.Time) []string {
	t.Helper()
	ls, err := x.Locks(ctx, key, below, now)
	if err != nil {
		t.Fatalf("locks %q: %v", key, err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Token)
	}
	slices.Sort(out)
	return out
}

func testLocks(t *testing.T, x index.Index) {
	if got := tokens(t, x, "a", true, t0); len(got) != 0 {
		t.Fatalf("locks before any: %q", got)
	}
	l := lock("t1", "a/b", false, false)
	if err := x.CreateLock(ctx, l, t0); err != nil {
		t.Fatal(err)
	}
	got, err := x.LockByToken(ctx, "t1", t0)
	if err != nil || got.Root != "a/b" || got.Owner != l.Owner || got.User != "alice" ||
		!got.Created.Equal(t0) || !got.Expires.Equal(l.Expires) || got.Shared || got.ZeroDepth {
		t.Fatalf("LockByToken = %+v, %v", got, err)
	}
	for _, c := range []struct {
		key   string
		below bool
		want  []string
	}{
		{"a/b", false, []string{"t1"}},
		{"a/b/c/d", false, []string{"t1"}},
		{"a", false, nil},
		{"a", true, []string{"t1"}},
		{"", true, []string{"t1"}},
		{"a/bc", true, nil},
	} {
		if got := tokens(t, x, c.key, c.below, t0); !slices.Equal(got, c.want) {
			t.Errorf("Locks(%q, below=%v) = %q, want %q", c.key, c.below, got, c.want)
		}
	}
	// Expiry: a lock is gone once its time has passed, and refreshing moves it.
	later := t0.Add(2 * time.Minute)
	if got := tokens(t, x, "a/b", false, later); len(got) != 0 {
		t.Fatalf("expired lock still listed: %q", got)
	}
	if _, err := x.LockByToken(ctx, "t1", later); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("expired LockByToken: %v", err)
	}
	if _, err := x.RefreshLock(ctx, "t1", later, later); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("refresh of an expired lock: %v", err)
	}
	r, err := x.RefreshLock(ctx, "t1", t0.Add(time.Hour), t0)
	if err != nil || !r.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("RefreshLock = %+v, %v", r, err)
	}
	if got := tokens(t, x, "a/b", false, later); !slices.Equal(got, []string{"t1"}) {
		t.Fatalf("refreshed lock: %q", got)
	}
	if err := x.Unlock(ctx, "t1", t0); err != nil {
		t.Fatal(err)
	}
	if err := x.Unlock(ctx, "t1", t0); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("second unlock: %v", err)
	}
	if got := tokens(t, x, "a/b", true, t0); len(got) != 0 {
		t.Fatalf("after unlock: %q", got)
	}
	// A zero-depth lock covers its root only.
	if err := x.CreateLock(ctx, lock("z", "d", true, false), t0); err != nil {
		t.Fatal(err)
	}
	if got := tokens(t, x, "d/x", false, t0); len(got) != 0 {
		t.Fatalf("zero-depth lock covers below: %q", got)
	}
}

func testLockConflicts(t *testing.T, x index.Index) {
	if err := x.CreateLock(ctx, lock("ex", "a/b", false, false), t0); err != nil {
		t.Fatal(err)
	}
	for _, l := range []index.Lock{
		lock("c1", "a/b", false, false),  // the same resource
		lock("c2", "a/b/c", false, true), // below an exclusive lock, even shared
		lock("c3", "a", false, false),    // above it, infinite depth
		lock("c4", "", false, true),      // the root
	} {
		err := x.CreateLock(ctx, l, t0)
		var le *index.LockedError
		if !errors.Is(err, index.ErrLocked) || !errors.As(err, &le) || le.Held.Token != "ex" {
			t.Errorf("CreateLock(%s on %q): got %v, want a LockedError naming ex", l.Token, l.Root, err)
		}
	}
	// A zero-depth lock above does not reach it; neither does a sibling.
	for _, l := range []index.Lock{lock("ok1", "a", true, false), lock("ok2", "a/bc", false, false)} {
		if err := x.CreateLock(ctx, l, t0); err != nil {
			t.Errorf("CreateLock(%s on %q): %v", l.Token, l.Root, err)
		}
	}
	// Shared locks share.
	for _, tok := range []string{"s1", "s2"} {
		if err := x.CreateLock(ctx, lock(tok, "sh", false, true), t0); err != nil {
			t.Fatalf("shared %s: %v", tok, err)
		}
	}
	if err := x.CreateLock(ctx, lock("s3", "sh/x", false, false), t0); !errors.Is(err, index.ErrLocked) {
		t.Fatalf("exclusive below shared: %v", err)
	}
	// An expired lock is no conflict.
	later := t0.Add(2 * time.Minute)
	l := lock("after", "a/b", false, false)
	l.Created, l.Expires = later, later.Add(time.Minute)
	if err := x.CreateLock(ctx, l, later); err != nil {
		t.Fatalf("lock over an expired one: %v", err)
	}
	if got := tokens(t, x, "a/b", false, later); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("after expiry: %q", got)
	}
}

func testLockRelease(t *testing.T, x index.Index) {
	for _, l := range []index.Lock{
		lock("1", "a", true, false), lock("2", "a/b", false, true), lock("3", "a/b/c", true, true),
		lock("4", "ab", false, false),
	} {
		if err := x.CreateLock(ctx, l, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.ReleaseLocks(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if got := tokens(t, x, "", true, t0); !slices.Equal(got, []string{"1", "4"}) {
		t.Fatalf("after releasing a/b: %q", got)
	}
	if err := x.ReleaseLocks(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := tokens(t, x, "", true, t0); len(got) != 0 {
		t.Fatalf("after releasing everything: %q", got)
	}
	// Locks come back after all were gone.
	if err := x.CreateLock(ctx, lock("5", "x", false, false), t0); err != nil {
		t.Fatal(err)
	}
	if got := tokens(t, x, "x", false, t0); !slices.Equal(got, []string{"5"}) {
		t.Fatalf("new lock after release: %q", got)
	}
}
