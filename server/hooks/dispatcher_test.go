package hooks_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/store"
)

// gated blocks each delivery until the gate of its object's folder opens,
// and counts how many are in flight at once.
type gated struct {
	gates    map[string]chan struct{} // folder → gate
	mu       sync.Mutex
	inflight int
}

func (g *gated) Deliver(ctx context.Context, ev hooks.Event) (hooks.Result, error) {
	g.mu.Lock()
	g.inflight++
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.inflight--; g.mu.Unlock() }()
	folder, _, _ := strings.Cut(ev.Object.Key, "/")
	select {
	case <-g.gates[folder]:
	case <-ctx.Done():
		return hooks.Result{}, ctx.Err()
	}
	return hooks.Result{Outcome: hooks.OK}, nil
}

func (g *gated) now() int { g.mu.Lock(); defer g.mu.Unlock(); return g.inflight }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSettingsReadPerBatch: a change of the delivery settings (a reload)
// holds from the dispatcher's next batch, without a restart.
func TestSettingsReadPerBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(t.TempDir(), store.Options{Sinks: []string{hooks.Sink("h")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &gated{gates: map[string]chan struct{}{"p1": make(chan struct{}), "p2": make(chan struct{})}}
	var concurrency atomic.Int64
	concurrency.Store(1)
	d := &hooks.Dispatcher{Store: st, Hooks: map[string]hooks.Hook{"h": g},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 20 * time.Millisecond,
		Settings: func(string) hooks.Settings {
			return hooks.Settings{Concurrency: int(concurrency.Load()), Timeout: time.Minute, MaxAttempts: 3,
				MaxAge: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
		}}
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	put := func(key string) {
		if _, err := st.Put(ctx, key, strings.NewReader("x"), store.Info{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}

	for _, k := range []string{"p1/a", "p1/b", "p1/c"} {
		put(k)
	}
	waitFor(t, "first delivery", func() bool { return g.now() == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := g.now(); n != 1 {
		t.Fatalf("%d deliveries in flight at concurrency 1", n)
	}
	concurrency.Store(3)
	for _, k := range []string{"p2/a", "p2/b", "p2/c"} {
		put(k)
	}
	close(g.gates["p1"])
	waitFor(t, "3 deliveries at once after the change", func() bool { return g.now() == 3 })
	close(g.gates["p2"])
	waitFor(t, "all delivered", func() bool { return g.now() == 0 })
}
