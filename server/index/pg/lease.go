package pg

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/attachd/attachd/server/index"
)

var _ index.Leaser = (*DB)(nil)

// leaseSpace is the first key of the two-key advisory locks leases take
// ("atd", 3; schema.go and locks.go use one-key locks 1 and 2); the second
// is a hash of the lease's name.
const leaseSpace int32 = 0x61746403

// TryLease implements index.Leaser with a session-level advisory lock held
// on one connection of the pool: released by release, or by PostgreSQL when
// that connection ends (the node died or lost the database).
func (x *DB) TryLease(ctx context.Context, name string) (func(), bool, error) {
	conn, err := x.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lease %s: %w", name, err)
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	k := int32(h.Sum32())
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, leaseSpace, k).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("lease %s: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, leaseSpace, k); err != nil {
			conn.Conn().Close(uctx) // ending the session releases it
		}
		conn.Release()
	}, true, nil
}
