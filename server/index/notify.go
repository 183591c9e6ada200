package index

import "sync"

// Notifier wakes subscribers, each on its own buffered channel, so that one
// consumer's wake-up is never taken by another. Implementations of Index use
// it for Subscribe. The zero value is ready to use.
type Notifier struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives after Notify, and a func that
// ends the subscription: once it returns, the channel receives nothing, not
// even a wake-up sent before it (a PostgreSQL NOTIFY of this process's own
// change can arrive after the local wake-up was taken). The channel is never
// closed.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs == nil {
		n.subs = map[chan struct{}]struct{}{}
	}
	n.subs[c] = struct{}{}
	n.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.subs, c)
			select {
			case <-c:
			default:
			}
			n.mu.Unlock()
		})
	}
}

// Notify wakes every subscriber. A subscriber not yet woken from the last
// Notify stays woken once: it will look at everything anyway.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
