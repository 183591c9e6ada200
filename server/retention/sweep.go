package retention

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/attachd/attachd/server/store"
)

// Reason is what the attachment.deleted events of retention deletes carry
// as their "reason".
const Reason = "retention"

// Walker reads every object of the index: a *store.Store, or a
// *store.Outbox beside a running server.
type Walker interface {
	WalkObjects(ctx context.Context, prefix string, fn func(store.Object) error) error
}

// RuleStats is what one rule would delete (Plan) or deleted (Run).
type RuleStats struct {
	Rule           int
	Count          int
	Bytes          int64
	Oldest, Newest string    // keys, by the time their age counts from
	OldestAt       time.Time // that time
	NewestAt       time.Time
}

func (s *RuleStats) add(o store.Object) {
	t := RecordedAt(o)
	if s.Count == 0 || t.Before(s.OldestAt) {
		s.Oldest, s.OldestAt = o.Key, t
	}
	if s.Count == 0 || t.After(s.NewestAt) {
		s.Newest, s.NewestAt = o.Key, t
	}
	s.Count++
	s.Bytes += o.Size
}

// Report sums up a plan or a run.
type Report struct {
	Scanned   int         // objects looked at
	Rules     []RuleStats // per rule, in the order of the rules
	Held      int         // expired under a rule, but kept by a hold
	HeldBytes int64
	Errors    int // deletes that failed (Run)
}

func (p *Policy) newReport() Report {
	r := Report{Rules: make([]RuleStats, len(p.Rules))}
	for i := range r.Rules {
		r.Rules[i].Rule = i
	}
	return r
}

// Plan walks the index and reports what would be deleted at now; fn, if
// not nil, is called with each object that would be.
//
// Holds set on folders are read once the walk is over: an index may serve
// one reader at a time (SQLite beside a running server), and the walk's
// rows hold it.
func (p *Policy) Plan(ctx context.Context, w Walker, now time.Time, fn func(store.Object, Verdict)) (Report, error) {
	rep := p.newReport()
	type candidate struct {
		o store.Object
		v Verdict
	}
	var expired []candidate
	err := w.WalkObjects(ctx, "", func(o store.Object) error {
		rep.Scanned++
		v := p.Decide(o)
		if v.Rule < 0 || now.Before(v.Expires) {
			return nil
		}
		if v.Held == -1 && hasHold(o.Props) {
			v.Held = PropertyHold
		}
		expired = append(expired, candidate{o, v})
		return ctx.Err()
	})
	if err != nil {
		return rep, err
	}
	holds := newPropHolds(w)
	for _, c := range expired {
		if c.v.Held == -1 {
			held, err := holds.held(ctx, c.o)
			if err != nil {
				return rep, err
			}
			if held {
				c.v.Held = PropertyHold
			}
		}
		if c.v.Held != -1 {
			rep.Held++
			rep.HeldBytes += c.o.Size
			continue
		}
		rep.Rules[c.v.Rule].add(c.o)
		if fn != nil {
			fn(c.o, c.v)
		}
	}
	return rep, ctx.Err()
}

// Deleter deletes objects: a *store.Store.
type Deleter interface {
	Walker
	Stat(ctx context.Context, key string) (store.Object, error)
	Delete(ctx context.Context, key string) error
}

// Run deletes what Plan would, one object at a time, waiting between two
// deletes so that there are at most rate per second (rate <= 0: no wait).
// Each object is read again and judged again just before it is deleted, so
// that one replaced since the walk is judged by its new version.
func (p *Policy) Run(ctx context.Context, st Deleter, now func() time.Time, rate float64, log *slog.Logger) (Report, error) {
	if log == nil {
		log = slog.Default()
	}
	var keys []string
	plan, err := p.Plan(ctx, st, now(), func(o store.Object, _ Verdict) { keys = append(keys, o.Key) })
	if err != nil {
		return plan, err
	}
	rep := p.newReport()
	rep.Scanned, rep.Held, rep.HeldBytes = plan.Scanned, plan.Held, plan.HeldBytes
	var gap time.Duration
	if rate > 0 {
		gap = time.Duration(float64(time.Second) / rate)
	}
	dctx := store.WithReason(ctx, Reason)
	var last time.Time
	for _, key := range keys {
		if gap > 0 && !last.IsZero() {
			if wait := gap - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return rep, ctx.Err()
				case <-t.C:
				}
			}
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		o, err := st.Stat(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			rep.Errors++
			log.Warn("retention: stat failed", "key", store.UnescapeKey(key), "err", err)
			continue
		}
		v := p.Decide(o)
		if !v.Expired(now()) {
			continue
		}
		// A hold set since the walk began still wins.
		if held, err := newPropHolds(st).held(ctx, o); err != nil || held {
			if err != nil {
				rep.Errors++
				log.Warn("retention: cannot read holds", "key", store.UnescapeKey(key), "err", err)
			}
			continue
		}
		last = time.Now()
		if err := st.Delete(dctx, key); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			rep.Errors++
			log.Warn("retention: delete failed", "key", store.UnescapeKey(key), "err", err)
			continue
		}
		rep.Rules[v.Rule].add(o)
		log.Debug("retention: deleted", "key", store.UnescapeKey(key), "rule", v.Rule+1,
			"recorded", RecordedAt(o).UTC().Format(time.RFC3339))
	}
	return rep, nil
}

// Deleted is the number of objects a run deleted.
func (r Report) Deleted() (n int) {
	for _, s := range r.Rules {
		n += s.Count
	}
	return n
}

// Sweeper runs the policy again and again in the background of attachd serve.
type Sweeper struct {
	Policy *Policy
	Store  Deleter
	Sweep  Sweep            // rate and interval (Settings fills in defaults)
	Log    *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now
	// Lease, if set, is called before each sweep: a sweep is made only if
	// it returns ok, and release is called when the sweep ends (in a
	// cluster, only one node sweeps at a time).
	Lease func(ctx context.Context) (release func(), ok bool)
	// Swept, if set, is called after each sweep (tests).
	Swept func(Report, error)

	mu   sync.Mutex    // guards Policy and Sweep once Run has started
	wake chan struct{} // Set's signal to Run
}

// Set replaces the policy and the settings while the sweeper runs (a
// reload): a sweep in progress ends under the old rules, the next one
// follows the new, and starts within the new interval. A nil policy, or
// no rules, or a negative rate, stops sweeping until the next Set.
func (s *Sweeper) Set(p *Policy, sw Sweep) {
	s.mu.Lock()
	s.Policy, s.Sweep = p, sw
	wake := s.wakeChan()
	s.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

func (s *Sweeper) wakeChan() chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	return s.wake
}

// current returns the policy and settings, and whether they sweep at all.
func (s *Sweeper) current() (*Policy, Sweep, chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.Sweep.Settings()
	on := set.Rate >= 0 && s.Policy != nil && len(s.Policy.Rules) > 0
	return s.Policy, set, s.wakeChan(), on
}

// Run sweeps once soon after start, then every interval, until ctx ends.
// With nothing to sweep it waits for Set.
func (s *Sweeper) Run(ctx context.Context) {
	log, now := s.Log, s.Now
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	_, first, _, _ := s.current()
	wait := min(time.Duration(first.Interval), 5*time.Second) // first sweep: once start-up has settled
	for {
		p, set, wake, on := s.current()
		t := time.NewTimer(wait)
		if !on {
			t.Stop() // nothing to sweep: wait for Set
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
			// New rules: the first sweep under them as soon as after a start.
			_, next, _, _ := s.current()
			wait = min(time.Duration(next.Interval), 5*time.Second)
			continue
		case <-t.C:
		}
		wait = time.Duration(set.Interval)
		s.sweep(ctx, p, set, now, log)
		if ctx.Err() != nil {
			return
		}
	}
}

// sweep makes one sweep, if the lease (if any) is granted.
func (s *Sweeper) sweep(ctx context.Context, p *Policy, set Sweep, now func() time.Time, log *slog.Logger) {
	release := func() {}
	if s.Lease != nil {
		var ok bool
		if release, ok = s.Lease(ctx); !ok {
			log.Debug("retention: another node is sweeping")
			return
		}
	}
	start := time.Now()
	rep, err := p.Run(ctx, s.Store, now, set.Rate, log)
	release()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		log.Warn("retention sweep failed", "err", err)
	} else if rep.Deleted() > 0 || rep.Errors > 0 {
		log.Info("retention sweep", "scanned", rep.Scanned, "deleted", rep.Deleted(), "held", rep.Held,
			"errors", rep.Errors, "duration_ms", time.Since(start).Milliseconds())
	}
	if s.Swept != nil {
		s.Swept(rep, err)
	}
}
