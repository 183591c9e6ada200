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

// TestRemoveAllQueuesEachObjectDeleted: deleting a folder queues a deleted
// event for every object below it, for every sink, naming the blob that
// went, and nothing for the objects beside the folder.
func TestRemoveAllQueuesEachObjectDeleted(t *testing.T) {
	ctx := context.Background()
	sinks := []string{"hook:a", "hook:b"}
	s, err := Open(t.TempDir(), Options{Sinks: sinks})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blobs := map[string]string{}
	for _, key := range []string{"a/b/x", "a/b/c/y", "a/z"} {
		o, err := s.Put(ctx, key, strings.NewReader(key), Info{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		blobs[key] = o.Blob
	}
	if err := s.RemoveAll(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	for _, sink := range sinks {
		ds, err := s.ClaimDeliveries(ctx, sink, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		deleted := map[string]string{}
		for _, d := range ds {
			if d.Type == ChangeDeleted {
				deleted[d.Key] = d.Blob
			}
		}
		want := map[string]string{"a/b/x": blobs["a/b/x"], "a/b/c/y": blobs["a/b/c/y"]}
		if len(deleted) != len(want) {
			t.Fatalf("%s: deleted events %v, want %v", sink, deleted, want)
		}
		for k, b := range want {
			if deleted[k] != b {
				t.Errorf("%s: deleted %s names blob %q, want %q", sink, k, deleted[k], b)
			}
		}
	}
}
