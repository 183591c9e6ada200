package server

import (
	"context"
	"sync"

	"github.com/attachd/attachd/server/retention"
)

// startRetention starts the retention sweeper (docs/retention.md). It
// sweeps while any [[retention]] rule is set and [retention_sweep] rate is
// not negative, and otherwise waits for a reload to set some. It deletes
// through the store, so every delete queues its attachment.deleted events,
// with the reason "retention".
func (s *Server) startRetention(ctx context.Context, wg *sync.WaitGroup) {
	cfg := s.now().cfg
	var p *retention.Policy
	if len(cfg.Retention) > 0 {
		var err error
		if p, err = retention.NewPolicy(cfg.Retention, cfg.Hold); err != nil { // Load validated them already
			s.log.Error("retention: no rules applied", "err", err)
		}
	}
	sw := &retention.Sweeper{Policy: p, Store: s.store, Sweep: cfg.RetentionSweep, Log: s.log,
		// In a cluster, one node at a time: the others find the lease
		// taken and wait for their next interval.
		Lease: func(ctx context.Context) (func(), bool) {
			release, ok, err := s.store.TryLease(ctx, "retention")
			if err != nil {
				s.log.Warn("retention: lease not taken; not sweeping this time", "err", err)
				return nil, false
			}
			return release, ok
		}}
	s.reloadMu.Lock()
	s.sweeper = sw // a reload from now on sets its rules
	s.reloadMu.Unlock()
	wg.Add(1)
	go func() { defer wg.Done(); sw.Run(ctx) }()
}
