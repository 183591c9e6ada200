package index

import "context"

// Leaser is an index that several nodes share and that can give one of them
// at a time a named lease (package pg). The SQLite index, which one process
// owns, has no need of it.
type Leaser interface {
	// TryLease takes the lease name if no node holds it, until release is
	// called or the node loses its connection to the index. ok is false
	// when another node holds it.
	TryLease(ctx context.Context, name string) (release func(), ok bool, err error)
}
