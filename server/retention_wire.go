package server

import (
	"context"
	"sync"

	"github.com/attachd/attachd/server/retention"
)

// startRetention starts the retention sweeper (docs/retention.md) if any
// [[retention]] rule is set and [retention_sweep] rate is not negative. It
// deletes through the store, so every delete queues its attachment.deleted
// events, with the reason "retention".
func (s *Server) startRetention(ctx context.Context, wg *sync.WaitGroup) {
	if len(s.cfg.Retention) == 0 || s.cfg.RetentionSweep.Settings().Rate < 0 {
		return
	}
	p, err := retention.NewPolicy(s.cfg.Retention, s.cfg.Hold)
	if err != nil { // Load validated them already
		s.log.Error("retention: sweeper not started", "err", err)
		return
	}
	sw := &retention.Sweeper{Policy: p, Store: s.store, Sweep: s.cfg.RetentionSweep, Log: s.log,
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
	wg.Add(1)
	go func() { defer wg.Done(); sw.Run(ctx) }()
}
