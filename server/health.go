package server

import (
	"context"
	"sync"
	"time"

	"github.com/attachd/attachd/server/store"
)

// storeHealth remembers the store's last health check for a second: /readyz
// is unauthenticated, and a probe in a loop must not turn into a loop of
// file creations.
type storeHealth struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

const healthEvery = time.Second

func (h *storeHealth) check(ctx context.Context, st *store.Store) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st == nil {
		return nil
	}
	if !h.at.IsZero() && time.Since(h.at) < healthEvery {
		return h.err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h.err, h.at = st.Check(ctx), time.Now()
	return h.err
}
