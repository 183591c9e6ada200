package index

import "testing"

// A wake-up sent before a subscription ends is not received after it: the
// PostgreSQL index's NOTIFY of a process's own change can arrive after the
// local wake-up was taken, and a cancelled subscriber must not see it.
func TestCancelledSubscriberReceivesNothing(t *testing.T) {
	var n Notifier
	c, cancel := n.Subscribe()
	other, cancelOther := n.Subscribe()
	defer cancelOther()
	n.Notify()
	cancel()
	n.Notify()
	select {
	case <-c:
		t.Fatal("a cancelled subscriber received a wake-up")
	default:
	}
	select {
	case <-other:
	default:
		t.Fatal("the other subscriber was not woken")
	}
}
