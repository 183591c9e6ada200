// Package pg is the shared index: PostgreSQL, for several attachd nodes over
// one data set. It implements index.Index with the semantics of package
// sqlite (the conformance suite indextest holds both to them), for any number
// of processes at once:
//
//   - Every write transaction (Update, and the lock and outbox changes)
//     begins by bumping the one-row version counter, whose row lock it holds
//     until it ends: writers are serialized across nodes, as SQLite's one
//     writer is, and Watch sees the counter move with every commit.
//   - Claim leases deliveries with FOR UPDATE SKIP LOCKED, outside that
//     order: two nodes never hold the same delivery while its lease runs.
//   - Subscribe hears other nodes' deliveries through LISTEN/NOTIFY.
//
// Every statement runs under a deadline, so that a PostgreSQL that is gone
// answers with an error wrapping index.ErrUnavailable instead of a hang.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Deadlines. A statement that outlives one has lost its server: its
// connection is closed, and its caller hears index.ErrUnavailable.
const (
	connectTimeout = 5 * time.Second  // one connection, unless the URL sets connect_timeout
	readTimeout    = 5 * time.Second  // one read (one page of a listing or walk)
	writeTimeout   = 10 * time.Second // one statement of a write transaction, waiting for other writers included
	checkTimeout   = 2 * time.Second  // Check
	schemaTimeout  = 60 * time.Second // the migrations at Open, waiting for other nodes' included
	closeWait      = 2 * time.Second  // Close, for the pool's connections to close
	defaultConns   = 16               // pool size, unless the URL sets pool_max_conns
)

// DB is the PostgreSQL index. It implements index.Index.
type DB struct {
	pool    *pgxpool.Pool
	addr    string // host:port, for messages
	pw      string // the password, kept out of messages
	changes index.Notifier

	stop    context.CancelFunc // ends the listener
	wg      sync.WaitGroup
	closeMu sync.Once
}

var _ index.Index = (*DB)(nil)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value string, as libpq takes), brings its schema up to date, and
// starts listening for other nodes' deliveries. A server that cannot be
// reached is an error wrapping index.ErrUnavailable that names its host and
// port; no error shows the password.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's message quotes the URL with its password redacted.
		return nil, fmt.Errorf("postgres index URL: %s", scrub(err.Error(), passwordOf(rawURL)))
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	if !strings.Contains(rawURL, "pool_max_conns") {
		cfg.MaxConns = defaultConns
	}
	x := &DB{addr: net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), pw: cc.Password}
	x.pool, err = pgxpool.NewWithConfig(ctx, cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("postgres index at %s: %s", x.addr, scrub(err.Error(), x.pw))
	}
	if err := x.migrate(ctx); err != nil {
		x.pool.Close()
		return nil, err
	}
	if err := x.backfillRecordings(ctx); err != nil {
		x.pool.Close()
		return nil, err
	}
	// The listener's first connection is made here, so that a subscriber
	// hears every commit after Open returns.
	lctx, stop := context.WithCancel(context.Background())
	lc, err := x.listenConn(lctx)
	if err != nil {
		stop()
		x.pool.Close()
		return nil, x.fail(ctx, err)
	}
	x.stop = stop
	x.wg.Add(1)
	go x.listen(lctx, lc)
	return x, nil
}

// Close stops the listener and closes every connection. It waits for the
// listener, and for the pool up to closeWait: pgx gives a server that went
// silent 15 s to acknowledge the cancellation of what it was doing, which
// it finishes on its own.
func (x *DB) Close() error {
	x.closeMu.Do(func() {
		x.stop()
		x.wg.Wait()
		done := make(chan struct{})
		go func() {
			x.pool.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	})
	return nil
}

// Check reports whether the index answers, within 2 s.
func (x *DB) Check(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var one int
	if err := x.pool.QueryRow(cctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("the index does not answer: %w", x.fail(ctx, err))
	}
	return nil
}

// Redact returns rawURL, a postgres:// URL or a key=value connection
// string, with its password replaced by "xxxxx": for messages and logs.
func Redact(rawURL string) string {
	if pw := passwordOf(rawURL); pw != "" {
		if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			if q := u.Query(); q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	s := urlPassword.ReplaceAllString(rawURL, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}

var (
	// What Redact falls back on when url does not parse.
	urlPassword = regexp.MustCompile(`^([a-z]+://[^:/@?#]*:)[^@]*@`)
	kvPassword  = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// passwordOf returns the password rawURL holds, if any.
func passwordOf(rawURL string) string {
	if cfg, err := pgconn.ParseConfig(rawURL); err == nil {
		return cfg.Password
	}
	if u, err := url.Parse(rawURL); err == nil {
		pw, _ := u.User.Password()
		return pw
	}
	return ""
}

// scrub removes the password from a message, should a library have put it there.
func scrub(msg, pw string) string {
	if pw == "" {
		return msg
	}
	return strings.ReplaceAll(msg, pw, "xxxxx")
}

// unavailableError is an index that cannot be reached. Its message names the
// server and the cause, briefly; it matches index.ErrUnavailable and the
// error it came from.
type unavailableError struct {
	addr  string
	cause string
	err   error
}

func (e *unavailableError) Error() string   { return "postgres index at " + e.addr + ": " + e.cause }
func (e *unavailableError) Unwrap() []error { return []error{index.ErrUnavailable, e.err} }

// fail maps an error from pgx to the index's: a full disk to index.ErrFull,
// a server that cannot be reached or does not answer in time to
// index.ErrUnavailable. parent is the caller's context, if any: an error
// because the caller gave up is not the server's fault.
func (x *DB) fail(parent context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ue *unavailableError
	if errors.As(err, &ue) || errors.Is(err, index.ErrFull) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return fmt.Errorf("%w: %w", index.ErrFull, err)
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			pe.Code == "53300",                                         // too_many_connections
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutting down, starting up
			return &unavailableError{addr: x.addr, cause: scrub(pe.Message, x.pw), err: err}
		}
		return err
	}
	if parent != nil && parent.Err() != nil {
		return err
	}
	if c := connCause(err); c != "" {
		return &unavailableError{addr: x.addr, cause: c, err: err}
	}
	return err
}

// connCause returns what went wrong with the connection if err says it
// failed, was lost or timed out, or "".
func connCause(err error) string {
	var errno syscall.Errno
	var netErr net.Error
	var dnsErr *net.DNSError
	var connectErr *pgconn.ConnectError
	switch {
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time"
	case errors.As(err, &errno):
		return errno.Error() // "connection refused", "connection reset by peer"
	case errors.As(err, &dnsErr):
		return dnsErr.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, net.ErrClosed):
		return "connection lost"
	case errors.As(err, &netErr):
		return netErr.Error()
	case errors.As(err, &connectErr):
		return "cannot connect"
	}
	return ""
}

// read returns the context for one read: the caller's, with its deadline if
// that comes within readTimeout.
func read(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, readTimeout)
}

// clean makes s storable as PostgreSQL text, which holds no NUL and only
// valid UTF-8. Keys, which the store keeps valid, are not cleaned: a key
// that is not is refused. Client-supplied texts (content types, lock owners)
// lose what PostgreSQL could not store.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// tx is one write transaction on one connection. Its statements go out in
// as few round trips as their results allow: BEGIN and the version bump with
// its first statement, and the statements whose results no one reads
// (later) with the next statement or with COMMIT.
type tx struct {
	x        *DB
	base     context.Context // the caller's values, not its cancellation
	conn     *pgxpool.Conn
	pre      []string // statements after the bump: advisory locks
	begun    bool
	deferred []statement // queued by later, not yet sent
	enqueued bool        // deliveries were queued: notify on commit
}

type statement struct {
	sql  string
	args []any
}

const (
	beginSQL = `BEGIN ISOLATION LEVEL READ COMMITTED`
	bumpSQL  = `UPDATE attachd_version SET version = version + 1`
)

func (t *tx) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.base, writeTimeout)
}

// send sends q in one batch after what must go before it: BEGIN, the
// version bump and the advisory locks if the transaction has not begun, and
// the deferred statements. It reads their results, and the caller reads q's
// from br and closes it. An error of a deferred statement is returned as
// q's: PostgreSQL skips the rest of the batch, and the transaction fails.
func (t *tx) send(ctx context.Context, q string, args ...any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue(beginSQL)
		b.Queue(bumpSQL)
		for _, p := range t.pre {
			b.Queue(p)
		}
		t.begun = true // from here on, end it with ROLLBACK or COMMIT
	}
	for _, d := range t.deferred {
		b.Queue(d.sql, d.args...)
	}
	t.deferred = nil
	b.Queue(q, args...)
	br := t.conn.SendBatch(ctx, b)
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

// exec runs a write statement in the transaction.
func (t *tx) exec(q string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	br, err := t.send(ctx, q, args...)
	if err != nil {
		return pgconn.CommandTag{}, t.x.fail(nil, err)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, t.x.fail(nil, err)
}

// later queues a write statement whose result no one reads: it goes out
// with the next statement, or with COMMIT, saving a round trip.
func (t *tx) later(q string, args ...any) {
	t.deferred = append(t.deferred, statement{q, args})
}

// query runs a statement in the transaction and calls fn for each row: the
// rows are read whole before the next statement.
func (t *tx) query(fn func(pgx.Rows) error, q string, args ...any) error {
	ctx, cancel := t.ctx()
	defer cancel()
	br, err := t.send(ctx, q, args...)
	if err != nil {
		return t.x.fail(nil, err)
	}
	rows, err := br.Query()
	if err == nil {
		err = scanRows(rows, fn)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return t.x.fail(nil, err)
}

// scanRows calls fn for each of rows and closes them.
func scanRows(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t *tx) rollback() {
	if !t.begun {
		return
	}
	ctx, cancel := context.WithTimeout(t.base, readTimeout)
	defer cancel()
	t.conn.Exec(ctx, `ROLLBACK`) // if it fails, the pool drops the connection, which ends the transaction too
}

// commit sends the deferred statements and COMMIT in one round trip.
func (t *tx) commit() error {
	if !t.begun && len(t.deferred) == 0 {
		return nil // nothing was written
	}
	ctx, cancel := t.ctx()
	defer cancel()
	if t.enqueued {
		// Other nodes' subscribers hear of the deliveries with the commit.
		t.later(`SELECT pg_notify('attachd_outbox', '')`)
	}
	br, err := t.send(ctx, `COMMIT`)
	if err != nil {
		return t.x.fail(nil, err)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return t.x.fail(nil, err)
	}
	if tag.String() == "ROLLBACK" { // PostgreSQL's answer to COMMIT in a failed transaction
		return errors.New("the transaction failed and was rolled back")
	}
	return nil
}

// Update implements index.Index.
func (x *DB) Update(ctx context.Context, fn func(index.Tx) error) error {
	return x.update(ctx, nil, func(t *tx) error { return fn(t) })
}

// update runs fn in a write transaction that takes the advisory locks pre
// after the version counter.
func (x *DB) update(ctx context.Context, pre []string, fn func(*tx) error) error {
	base := context.WithoutCancel(ctx)
	actx, cancel := context.WithTimeout(base, writeTimeout)
	conn, err := x.pool.Acquire(actx)
	cancel()
	if err != nil {
		return fmt.Errorf("index: begin: %w", x.fail(nil, err))
	}
	defer conn.Release() // a connection still in a transaction is closed, not reused
	t := &tx{x: x, base: base, conn: conn, pre: pre}
	if err := fn(t); err != nil {
		t.rollback()
		return err
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	if t.enqueued {
		x.changes.Notify()
	}
	return nil
}
