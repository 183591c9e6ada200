package server

import (
	"sync/atomic"
	"testing"
	"time"
)

// The lull calls do once per burst, only after the last request has ended
// and no other began for its whole interval, and never once stopped.
func TestLull(t *testing.T) {
	var calls atomic.Int32
	var q lull
	const after = 50 * time.Millisecond
	q.start(after, func() { calls.Add(1) })
	waitCalls := func(want int32) {
		t.Helper()
		time.Sleep(4 * after)
		if got := calls.Load(); got != want {
			t.Fatalf("do called %d times, want %d", got, want)
		}
	}

	q.begin()
	waitCalls(0) // a request in flight: no lull
	q.begin()
	q.end()
	waitCalls(0) // one of two ended
	q.end()
	waitCalls(1)
	waitCalls(1) // once per burst, not every interval

	// Requests that keep coming closer than the interval put it off.
	for i := 0; i < 6; i++ {
		q.begin()
		q.end()
		time.Sleep(after / 3)
		if calls.Load() != 1 {
			t.Fatalf("do called during a burst (request %d)", i)
		}
	}
	waitCalls(2)

	// A request that begins after the last end, and is still running
	// when the timer fires, holds it off.
	q.begin()
	q.end()
	q.begin()
	waitCalls(2)
	q.end()
	waitCalls(3)

	q.begin()
	q.end()
	q.stop()
	waitCalls(3)
}

// stop waits for a call of do under way.
func TestLullStopWaits(t *testing.T) {
	var q lull
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	q.start(time.Millisecond, func() {
		close(entered)
		<-release
		finished.Store(true)
	})
	q.begin()
	q.end()
	<-entered
	stopped := make(chan struct{})
	go func() { q.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while do was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	if !finished.Load() {
		t.Fatal("stop returned before do finished")
	}
}
