package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/attachd/attachd/server/store"
)

// Settings tune the delivery of one hook.
type Settings struct {
	Concurrency int           // deliveries in flight at once
	Timeout     time.Duration // per delivery
	MaxAttempts int           // then dead letter
	MaxAge      time.Duration // then dead letter
	MinBackoff  time.Duration // first retry delay, doubled per attempt
	MaxBackoff  time.Duration // longest retry delay
}

// Sink returns the outbox sink name of hook name.
func Sink(name string) string { return "hook:" + name }

// Dispatcher delivers the outbox of each configured hook.
type Dispatcher struct {
	Store    *store.Store
	Hooks    map[string]Hook
	Settings func(name string) Settings // read before each batch, so it may change
	Log      *slog.Logger
	// Delivered is called after each attempt (for metrics); may be nil.
	Delivered func(hook string, outcome Outcome, err error)
	// PollInterval bounds how long a due retry waits to be noticed; 1 s.
	PollInterval time.Duration
}

// Run delivers until ctx is cancelled. Deliveries in flight when it is are
// abandoned to their lease, and redelivered by the next process.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wake := map[string]chan struct{}{}
	for name := range d.Hooks {
		wake[name] = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run(ctx, name, wake[name])
		}()
	}
	// Fan the store's change signal out to every hook's loop. The
	// subscription is the dispatcher's own: the replicator has another.
	changed, cancel := d.Store.Subscribe()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				for _, c := range wake {
					select {
					case c <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	wg.Wait()
}

// coalesce is how long a woken dispatcher waits for more events.
const coalesce = 20 * time.Millisecond

// batch bounds how many deliveries one claim takes: a claim and its outcomes
// cost one index transaction each, whatever their number.
const batch = 64

func (d *Dispatcher) run(ctx context.Context, name string, wake <-chan struct{}) {
	poll := d.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	sink := Sink(name)
	for ctx.Err() == nil {
		// Read for each batch: a reload (SIGHUP) changes them.
		set := d.Settings(name)
		// A delivery cannot outlive its timeout, so a lease a little longer
		// is never taken from a live dispatcher.
		claimed, err := d.Store.ClaimDeliveries(ctx, sink, max(batch, set.Concurrency), set.Timeout+5*time.Second)
		if err != nil {
			d.Log.Error("hook: cannot read the outbox", "hook", name, "err", err)
		}
		if len(claimed) == 0 {
			select {
			case <-ctx.Done():
			case <-wake:
				// Let a burst of stores queue up: one claim and one finish
				// per batch instead of per event leaves the index's one
				// writer to the uploads.
				time.Sleep(coalesce)
			case <-tick.C:
			}
			continue
		}
		outs := d.deliverAll(ctx, name, set, claimed)
		if ctx.Err() != nil {
			// Shutting down: record what was delivered and give back the
			// rest, so that the next process need not wait out the leases.
			for i := range outs {
				if !outs[i].Done && !outs[i].Dead {
					outs[i].Next, outs[i].Error = time.Now(), "interrupted by shutdown"
				}
			}
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d.Store.FinishDeliveries(fctx, outs)
			cancel()
			return
		}
		if err := d.Store.FinishDeliveries(ctx, outs); err != nil {
			d.Log.Error("hook: cannot record deliveries; they will be repeated", "hook", name, "err", err)
		}
	}
}

func (d *Dispatcher) deliverAll(ctx context.Context, name string, set Settings, ds []store.Delivery) []store.Outcome {
	outs := make([]store.Outcome, len(ds))
	sem := make(chan struct{}, max(set.Concurrency, 1))
	var wg sync.WaitGroup
	for i, dl := range ds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i] = d.deliver(ctx, name, set, dl)
		}()
	}
	wg.Wait()
	return outs
}

// deliver makes one attempt and decides what follows.
func (d *Dispatcher) deliver(ctx context.Context, name string, set Settings, dl store.Delivery) store.Outcome {
	ev := d.event(ctx, dl)
	cctx, cancel := context.WithTimeout(ctx, set.Timeout)
	res, err := d.Hooks[name].Deliver(cctx, ev)
	cancel()
	if d.Delivered != nil {
		d.Delivered(name, res.Outcome, err)
	}
	out := store.Outcome{ID: dl.ID}
	log := d.Log.With("hook", name, "event_id", dl.EventID, "key", store.UnescapeKey(dl.Key), "attempt", dl.Attempts, "request_id", dl.RequestID)
	switch {
	case err != nil:
		out.Error = err.Error()
	case res.Outcome == OK:
		out.Done = true
		if len(res.Annotations) > 0 {
			d.annotate(ctx, name, dl, res.Annotations, log)
		}
		log.Debug("hook delivered")
		return out
	case res.Outcome == Fail:
		out.Dead, out.Error = true, "hook failed: "+res.Message
		log.Warn("hook refused the event; kept as a dead letter", "message", res.Message)
		return out
	default:
		out.Error = "hook asked to retry: " + res.Message
	}
	if dl.Attempts >= set.MaxAttempts || time.Since(dl.Occurred) > set.MaxAge {
		out.Dead = true
		log.Warn("hook delivery gave up; kept as a dead letter", "err", out.Error)
		return out
	}
	wait := backoff(dl.Attempts, set.MinBackoff, set.MaxBackoff)
	if err == nil && res.RetryAfter > 0 {
		wait = res.RetryAfter
	}
	out.Next = time.Now().Add(wait)
	log.Info("hook delivery will be retried", "retry_in_ms", wait.Milliseconds(), "err", out.Error)
	return out
}

// backoff is first doubled per attempt, capped at most, ± 20 % jitter so
// that a hook coming back is not hit by every retry at once.
func backoff(attempt int, first, most time.Duration) time.Duration {
	first = max(first, time.Millisecond)
	d := first << min(max(attempt-1, 0), 20)
	d = min(d, max(most, first))
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// event builds the delivery's event from the object's current version, so
// that a late delivery never describes bytes that are gone; a deleted object
// is described as it was.
func (d *Dispatcher) event(ctx context.Context, dl store.Delivery) Event {
	ev := Event{Schema: SchemaVersion, EventID: dl.EventID, Type: dl.Type, OccurredAt: dl.Occurred.UTC(),
		Attempt: dl.Attempts, RequestID: dl.RequestID, Reason: dl.Reason,
		Object: Object{Key: dl.Key, Size: dl.Size, SHA256: dl.SHA256, ContentType: dl.ContentType, DocID: dl.DocID, MediaID: dl.MediaID}}
	if dl.Type == store.ChangeDeleted {
		return ev
	}
	if o, err := d.Store.Stat(ctx, dl.Key); err == nil {
		ev.Object = Object{Key: o.Key, Size: o.Size, SHA256: o.SHA256, ContentType: o.ContentType,
			DocID: o.DocID, MediaID: o.MediaID, Metadata: o.Meta}
	}
	return ev
}

// annotate stores a hook's annotations in the object's metadata, under
// "annotations"/<hook>, if the version it saw is still the current one.
func (d *Dispatcher) annotate(ctx context.Context, name string, dl store.Delivery, ann map[string]string, log *slog.Logger) {
	_, err := d.Store.Update(ctx, dl.Key, func(o *store.Object) bool {
		if o.SHA256 != dl.SHA256 {
			return false
		}
		var meta map[string]any
		if len(o.Meta) > 0 && json.Unmarshal(o.Meta, &meta) != nil {
			return false
		}
		if meta == nil {
			meta = map[string]any{}
		}
		all, _ := meta["annotations"].(map[string]any)
		if all == nil {
			all = map[string]any{}
		}
		all[name] = ann
		meta["annotations"] = all
		b, err := json.Marshal(meta)
		if err != nil {
			return false
		}
		o.Meta = b
		return true
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn("could not store the hook's annotations", "err", err)
	}
}

// Opener returns a ContentOpener over st: hooks read the version they were
// told about, or learn that it was replaced.
func Opener(st *store.Store) ContentOpener {
	return func(ctx context.Context, key, sha256 string) (io.ReadCloser, error) {
		o, err := st.Stat(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("object %q: %w", store.UnescapeKey(key), err)
		}
		if sha256 != "" && o.SHA256 != sha256 {
			return nil, fmt.Errorf("object %q: version %s was replaced by %s: %w", store.UnescapeKey(key), sha256, o.SHA256, store.ErrNotFound)
		}
		return st.OpenVersion(o)
	}
}
