package server

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// lullAfter is how long the server must serve no request, after serving
// some, before it trims (Server.trim).
const lullAfter = time.Second

// lull calls do once the requests it counts have all ended and none began
// for a while. A burst of requests leaves garbage that no collection frees
// while nothing allocates, and caches of listings that the burst's own
// writes made stale: without this, a server that served a burst kept that
// memory until the next burst or the runtime's two-minute collection.
type lull struct {
	after   time.Duration
	do      func()
	active  atomic.Int64  // requests being served
	started atomic.Uint64 // requests begun, ever

	mu      sync.Mutex
	running sync.WaitGroup // a call of do
	timer   *time.Timer
	armedAt uint64 // started when the timer was last set
	stopped bool
}

func (q *lull) begin() { q.active.Add(1); q.started.Add(1) }

// end counts a request's end and, if it was the last one, sets the timer.
func (q *lull) end() {
	if q.active.Add(-1) != 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped || q.do == nil {
		return
	}
	q.armedAt = q.started.Load()
	if q.timer == nil {
		q.timer = time.AfterFunc(q.after, q.fire)
	} else {
		q.timer.Reset(q.after)
	}
}

func (q *lull) fire() {
	q.mu.Lock()
	idle := !q.stopped && q.active.Load() == 0 && q.started.Load() == q.armedAt
	do := q.do
	if idle {
		q.running.Add(1)
	}
	q.mu.Unlock()
	if idle {
		defer q.running.Done()
		do()
	}
}

// start makes the timer call do from now on.
func (q *lull) start(after time.Duration, do func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.after, q.do, q.stopped = after, do, false
}

// stop ends the timer and waits for a call of do under way; do is not
// called again.
func (q *lull) stop() {
	q.mu.Lock()
	q.stopped = true
	if q.timer != nil {
		q.timer.Stop()
	}
	q.mu.Unlock()
	q.running.Wait()
}

// trim drops what the server keeps only to answer requests faster (WebDAV
// listings the index has moved past or nobody asked for lately) and returns
// the memory the last burst left to the system: one collection per burst,
// a few milliseconds on a heap of this size.
func (s *Server) trim() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.dav != nil {
		s.dav.Trim(ctx)
	}
	s.store.Trim(ctx)
	// Two collections: buffers put back in a sync.Pool survive the first.
	runtime.GC()
	debug.FreeOSMemory()
}
