package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSubscribersAreWokenIndependently: the hook dispatcher and the
// replicator each subscribe; one change wakes both, and neither takes the
// other's wake-up.
func TestSubscribersAreWokenIndependently(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Sinks: []string{"hook:a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hooks, cancelHooks := s.Subscribe()
	defer cancelHooks()
	replicator, cancelReplicator := s.Subscribe()
	defer cancelReplicator()
	if _, err := s.Put(context.Background(), "a/x", strings.NewReader("x"), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]<-chan struct{}{"hooks": hooks, "replicator": replicator} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not woken by a change", name)
		}
	}
}
