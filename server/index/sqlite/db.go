// Package sqlite is the embedded index: one SQLite file in the data
// directory, written through one connection and read through a small pool.
// It implements index.Index for one process, which the data directory's lock
// makes the only writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attachd/attachd/server/index"
	_ "modernc.org/sqlite" // pure Go, so the binary stays static
)

// DB is the SQLite index. It implements index.Index.
type DB struct {
	path string
	w    *sql.DB // one connection: SQLite has one writer at a time anyway
	r    *sql.DB
	// Prepared statements, by DB and query text: parsing SQL was a third of
	// a store's CPU time.
	stmts   sync.Map // stmtKey → *sql.Stmt
	pending sync.Map // write queries to prepare once the write connection is free
	changes index.Notifier
	// noLocks lets lock queries be skipped while no lock exists, which is
	// almost always: Kazoo never locks, and WebDAV clients lock briefly. It
	// is true only while the table is known to be empty; lockMu is held by
	// whatever adds or removes locks, so a count cannot miss a new lock.
	noLocks atomic.Bool
	lockMu  sync.Mutex
	commits commitQueue // batch.go
}

var _ index.Index = (*DB)(nil)

// Open opens (creating if needed) the index at path, for the one process
// that owns the data directory, and checks its integrity. An index that
// fails the check is an error wrapping index.ErrCorrupt (see MoveAside).
func Open(path string) (*DB, error) {
	// synchronous(FULL): a commit syncs the WAL before it returns. NORMAL
	// would lose the last commits on a power cut; the objects come back from
	// their sidecars, but the outbox rows written with them would not, and
	// hooks are at least once (docs/design.md, invariant 6). Group commit
	// (batch.go) shares that sync among concurrent stores.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := createSchema(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("create index schema in %s: %w", path, corruptErr(err))
	}
	// Readers keep a small page cache each: the operating system caches the
	// file anyway, and eight default caches would hold 16 MiB.
	r, err := sql.Open("sqlite", dsn+"&mode=ro&_pragma=cache_size(-512)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	// Keep them all: database/sql keeps 2 idle by default, and reopening a
	// connection (and re-preparing its statements) cost more than a fetch.
	r.SetMaxIdleConns(4)
	r.SetConnMaxIdleTime(0)
	db := &DB{path: path, w: w, r: r}
	if err := db.quickCheck(); err != nil {
		db.Close()
		return nil, err
	}
	db.recountLocks(context.Background())
	return db, nil
}

// OpenExisting opens the index at path beside the process that owns it
// (attachd hooks status, attachd hooks retry), which SQLite allows. It
// refuses to create one.
func OpenExisting(path string) (*DB, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s (has attachd run on this data directory?): %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := createSchema(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	x := &DB{path: path, w: db, r: db}
	x.recountLocks(context.Background())
	return x, nil
}

// MoveAside renames the index at path and its journal files to
// path.corrupt-<unix time>, where an operator can inspect them, and returns
// that name. The next Open starts a new index.
func MoveAside(path string) (string, error) {
	aside := path + ".corrupt-" + strconv.FormatInt(time.Now().Unix(), 10)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("move corrupt index aside: %w", err)
		}
	}
	return aside, nil
}

// Close closes the index. The database/sql pools close their statements.
func (x *DB) Close() error {
	x.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	if x.r == x.w {
		return x.w.Close()
	}
	return errors.Join(x.r.Close(), x.w.Close())
}

// Check reports whether the index file is still in place and answers: an
// open file answers even after it was removed, but the next start would not
// find it.
func (x *DB) Check(ctx context.Context) error {
	if _, err := os.Stat(x.path); err != nil {
		return errors.New("the index (index.db) is gone from the data directory; restart to rebuild it")
	}
	var one int
	if err := x.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("the index does not answer: %w", err)
	}
	return nil
}

// Subscribe implements index.Index.
func (x *DB) Subscribe() (<-chan struct{}, func()) { return x.changes.Subscribe() }

type stmtKey struct {
	db *sql.DB
	q  string
}

func (x *DB) cached(db *sql.DB, q string) *sql.Stmt {
	if st, ok := x.stmts.Load(stmtKey{db, q}); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

// prep prepares q on db and caches it. It must not be called on the write
// DB inside a transaction: the one connection is taken.
func (x *DB) prep(db *sql.DB, q string) (*sql.Stmt, error) {
	if st := x.cached(db, q); st != nil {
		return st, nil
	}
	st, err := db.Prepare(q)
	if err != nil {
		return nil, fmt.Errorf("index: prepare: %w", err)
	}
	if prev, loaded := x.stmts.LoadOrStore(stmtKey{db, q}, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// preparePending prepares the write statements seen since the last call.
func (x *DB) preparePending() {
	x.pending.Range(func(q, _ any) bool {
		x.pending.Delete(q)
		x.prep(x.w, q.(string))
		return true
	})
}

// queryRow runs a read statement.
func (x *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := x.prep(x.r, q)
	if err != nil {
		return x.r.QueryRowContext(ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a read statement returning rows.
func (x *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := x.prep(x.r, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// tx is one write transaction on the write connection.
type tx struct {
	x        *DB
	ctx      context.Context
	tx       *sql.Tx
	enqueued bool // deliveries were queued: wake the subscribers on commit
}

// exec runs a write statement, prepared if it has been seen before.
func (t *tx) exec(q string, args ...any) (sql.Result, error) {
	if st := t.x.cached(t.x.w, q); st != nil {
		return t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
	}
	t.x.pending.Store(q, true)
	return t.tx.ExecContext(t.ctx, q, args...)
}

// queryRow runs a read statement in the transaction, prepared if it has
// been seen before.
func (t *tx) queryRow(q string, args ...any) *sql.Row {
	if st := t.x.cached(t.x.w, q); st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryRowContext(t.ctx, args...)
	}
	t.x.pending.Store(q, true)
	return t.tx.QueryRowContext(t.ctx, q, args...)
}

// Update implements index.Index.
func (x *DB) Update(ctx context.Context, fn func(index.Tx) error) error {
	return x.update(ctx, func(t *tx) error { return fn(t) })
}

// SQLite's primary result codes the index tells apart.
const (
	sqliteCorrupt = 11
	sqliteFull    = 13
	sqliteNotADB  = 26
)

func sqliteCode(err error) int {
	var se interface{ Code() int }
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// fullErr marks a write refused for want of disk as index.ErrFull, which the
// store answers as it does a full disk for the bytes.
func fullErr(err error) error {
	if sqliteCode(err) == sqliteFull && !errors.Is(err, index.ErrFull) {
		return fmt.Errorf("%w: %w", index.ErrFull, err)
	}
	return err
}

// corruptErr marks a failure that says the file is no sound database as
// index.ErrCorrupt.
func corruptErr(err error) error {
	if c := sqliteCode(err); c == sqliteCorrupt || c == sqliteNotADB {
		return fmt.Errorf("%w: %w", index.ErrCorrupt, err)
	}
	return err
}

// quickCheck runs SQLite's quick_check over the whole index.
func (x *DB) quickCheck() error {
	rows, err := x.w.Query(`PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("check index: %w", corruptErr(err))
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check index: %w", corruptErr(err))
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check index: %w", corruptErr(err))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %v", index.ErrCorrupt, problems)
	}
	return nil
}

// Watch implements index.Index. It reads SQLite's PRAGMA data_version on a
// connection of its own that never writes (the value is per connection).
func (x *DB) Watch() index.Watcher { return &watcher{db: x.r} }

type watcher struct {
	db   *sql.DB
	mu   sync.Mutex
	conn *sql.Conn
}

func (w *watcher) Version(ctx context.Context) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := w.db.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("index: %w", err)
		}
		w.conn = c
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		w.conn.Close()
		w.conn = nil
		return 0, fmt.Errorf("index: data_version: %w", err)
	}
	return v, nil
}

func (w *watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}

// ShrinkMemory gives back what the write connection's page cache holds
// (PRAGMA shrink_memory); the server calls it when requests stop
// (Store.Trim). The next change reads its pages again from the file, which
// the operating system caches.
func (x *DB) ShrinkMemory(ctx context.Context) error {
	_, err := x.w.ExecContext(ctx, `PRAGMA shrink_memory`)
	return err
}
