package pg

import (
	"context"
	"testing"
)

// TestLeaseOneHolder: of two handles on one database, one holds a lease at
// a time; another name is free; a released lease can be taken again, and one
// whose holder closed is free.
func TestLeaseOneHolder(t *testing.T) {
	ctx := context.Background()
	a, b := openPair(t)
	name := randomName("lease") // advisory locks are per database, not per schema
	release, ok, err := a.TryLease(ctx, name)
	if err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if _, ok, err := b.TryLease(ctx, name); err != nil || ok {
		t.Fatalf("b took a held lease: %v %v", ok, err)
	}
	if rel, ok, err := b.TryLease(ctx, "other"); err != nil || !ok {
		t.Fatalf("b, another name: %v %v", ok, err)
	} else {
		rel()
	}
	release()
	relB, ok, err := b.TryLease(ctx, name)
	if err != nil || !ok {
		t.Fatalf("b after release: %v %v", ok, err)
	}
	defer relB()
	if _, ok, _ := a.TryLease(ctx, name); ok {
		t.Fatal("a took b's lease")
	}
}
