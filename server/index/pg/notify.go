package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// channel is what a transaction that queues deliveries notifies on commit.
const channel = "attachd_outbox"

// The listener's pace: how long it waits between pings of a quiet
// connection (a server that vanished without a word is noticed by the next
// ping), and how long between attempts to reconnect.
var (
	listenIdle = 15 * time.Second
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Subscribe implements index.Index. Subscribers are woken by this process's
// commits directly, by other nodes' through LISTEN, and after the listener
// reconnects, since notifications may have been missed meanwhile.
func (x *DB) Subscribe() (<-chan struct{}, func()) { return x.changes.Subscribe() }

// listenConn opens the listener's own connection, outside the pool: it
// stays in LISTEN for the DB's life.
func (x *DB) listenConn(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, x.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	if _, err := c.Exec(lctx, `LISTEN `+channel); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// listen wakes the subscribers for each notification on c, reconnecting
// with backoff when c is lost, until ctx ends. Close joins it.
func (x *DB) listen(ctx context.Context, c *pgx.Conn) {
	defer x.wg.Done()
	backoff := minBackoff
	for {
		if c != nil {
			x.waitLoop(ctx, c)
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c.Close(cctx)
			cancel()
			c = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		var err error
		if c, err = x.listenConn(ctx); err != nil {
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		x.changes.Notify() // what was queued while the listener was away
	}
}

// waitLoop returns when c fails or ctx ends.
func (x *DB) waitLoop(ctx context.Context, c *pgx.Conn) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		_, err := c.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			x.changes.Notify()
		case ctx.Err() != nil:
			return
		case pgconn.Timeout(err) && !c.IsClosed():
			// Quiet for a while: make sure the server is still there.
			pctx, cancel := context.WithTimeout(ctx, readTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		default:
			return
		}
	}
}

// Watch implements index.Index: the version counter every write
// transaction bumps.
func (x *DB) Watch() index.Watcher { return watcher{x} }

type watcher struct{ x *DB }

func (w watcher) Version(ctx context.Context) (int64, error) {
	rctx, cancel := read(ctx)
	defer cancel()
	var v int64
	if err := w.x.pool.QueryRow(rctx, `SELECT version FROM attachd_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("index: version: %w", w.x.fail(ctx, err))
	}
	return v, nil
}

func (watcher) Close() error { return nil }
