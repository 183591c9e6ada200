package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the embedded index: pure Go, so the binary stays static
)

// index is the embedded SQLite index. It is a cache of what the objects tree
// says (design invariant 5): everything in it but locks and hook deliveries can
// be rebuilt by reindex.
type index struct {
	w *sql.DB // one connection: SQLite has one writer at a time anyway
	r *sql.DB
	// Prepared statements, by DB and query text: parsing SQL was a third of
	// a store's CPU time.
	stmts   sync.Map // stmtKey → *sql.Stmt
	pending sync.Map // write queries to prepare once the write connection is free
}

type stmtKey struct {
	db *sql.DB
	q  string
}

func (x *index) cached(db *sql.DB, q string) *sql.Stmt {
	if st, ok := x.stmts.Load(stmtKey{db, q}); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

// prep prepares q on db and caches it. It must not be called on the write
// DB inside a transaction: the one connection is taken.
func (x *index) prep(db *sql.DB, q string) (*sql.Stmt, error) {
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

// exec runs a write statement in tx, prepared if it has been seen before.
func (x *index) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := x.cached(x.w, q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	x.pending.Store(q, true)
	return tx.ExecContext(ctx, q, args...)
}

// queryRow runs a read statement.
func (x *index) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := x.prep(x.r, q)
	if err != nil {
		return x.r.QueryRowContext(ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a read statement returning rows.
func (x *index) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := x.prep(x.r, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

const schema = `
CREATE TABLE IF NOT EXISTS objects (
	key          TEXT PRIMARY KEY,
	parent       TEXT NOT NULL,
	blob         TEXT NOT NULL,
	size         INTEGER NOT NULL,
	sha256       TEXT NOT NULL,
	content_type TEXT NOT NULL,
	doc_id       TEXT NOT NULL,
	media_id     TEXT NOT NULL,
	meta         TEXT NOT NULL,
	props        TEXT NOT NULL,
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL,
	mtime        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_parent ON objects(parent);
CREATE INDEX IF NOT EXISTS objects_doc ON objects(doc_id) WHERE doc_id != '';
CREATE INDEX IF NOT EXISTS objects_media ON objects(media_id) WHERE media_id != '';
CREATE TABLE IF NOT EXISTS dirs (
	key     TEXT PRIMARY KEY,
	parent  TEXT NOT NULL,
	props   TEXT NOT NULL,
	created INTEGER NOT NULL,
	mtime   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dirs_parent ON dirs(parent);
`

// schemas are run in order when the index opens; files that own further
// tables append theirs in init.
var schemas = []string{schema}

func openIndex(path string) (*index, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	for _, sc := range schemas {
		if _, err := w.Exec(sc); err != nil {
			w.Close()
			return nil, fmt.Errorf("create index schema in %s: %w", path, err)
		}
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
	return &index{w: w, r: r}, nil
}

func (x *index) Close() error {
	x.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return errors.Join(x.r.Close(), x.w.Close())
}

const objectCols = `key, blob, size, sha256, content_type, doc_id, media_id, meta, props, created, updated, mtime`

type scanner interface{ Scan(...any) error }

func scanObject(row scanner) (Object, error) {
	var o Object
	var meta, props string
	var created, updated, mtime int64
	err := row.Scan(&o.Key, &o.Blob, &o.Size, &o.SHA256, &o.ContentType, &o.DocID, &o.MediaID,
		&meta, &props, &created, &updated, &mtime)
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("index: %w", err)
	}
	o.Meta = []byte(meta)
	o.Props = []byte(props)
	o.Created, o.Updated, o.ModTime = time.Unix(0, created), time.Unix(0, updated), time.Unix(0, mtime)
	return o, nil
}

func (x *index) get(ctx context.Context, key string) (Object, error) {
	return scanObject(x.queryRow(ctx, `SELECT `+objectCols+` FROM objects WHERE key = ?`, key))
}

// longest returns the object with the longest key among keys.
func (x *index) longest(ctx context.Context, keys []string) (Object, error) {
	if len(keys) == 0 {
		return Object{}, ErrNotFound
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	q := `SELECT ` + objectCols + ` FROM objects WHERE key IN (?` + strings.Repeat(",?", len(keys)-1) +
		`) ORDER BY length(key) DESC LIMIT 1`
	return scanObject(x.queryRow(ctx, q, args...))
}

// byID returns the object whose media id or doc id is id, preferring one
// below the folder under, then the most recently updated.
func (x *index) byID(ctx context.Context, id, under string) (Object, error) {
	lo, hi := prefixRange(under)
	return scanObject(x.queryRow(ctx, `SELECT `+objectCols+` FROM objects
		WHERE key IN (SELECT key FROM objects WHERE media_id = ?1 UNION SELECT key FROM objects WHERE doc_id = ?1)
		ORDER BY (key > ?2 AND key < ?3) DESC, updated DESC LIMIT 1`, id, lo, hi))
}

func (x *index) putObject(ctx context.Context, tx *sql.Tx, o Object) error {
	parent, _ := Split(o.Key)
	_, err := x.exec(ctx, tx, `INSERT INTO objects (`+objectCols+`, parent) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(key) DO UPDATE SET blob=excluded.blob, size=excluded.size, sha256=excluded.sha256,
		content_type=excluded.content_type, doc_id=excluded.doc_id, media_id=excluded.media_id,
		meta=excluded.meta, props=excluded.props, created=excluded.created, updated=excluded.updated, mtime=excluded.mtime`,
		o.Key, o.Blob, o.Size, o.SHA256, o.ContentType, o.DocID, o.MediaID, string(jsonOr(o.Meta)), string(jsonOr(o.Props)),
		o.Created.UnixNano(), o.Updated.UnixNano(), o.ModTime.UnixNano(), parent)
	if err != nil {
		return fmt.Errorf("index object %q: %w", o.Key, err)
	}
	return x.putDirs(ctx, tx, parent, o.Updated)
}

// putDirs records key and its parents as collections: a key implies its folders.
func (x *index) putDirs(ctx context.Context, tx *sql.Tx, key string, t time.Time) error {
	for key != "" {
		parent, _ := Split(key)
		res, err := x.exec(ctx, tx, `INSERT INTO dirs (key, parent, props, created, mtime) VALUES (?,?,'{}',?,?)
			ON CONFLICT(key) DO NOTHING`, key, parent, t.UnixNano(), t.UnixNano())
		if err != nil {
			return fmt.Errorf("index folder %q: %w", key, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // its parents are there too
		}
		key = parent
	}
	return nil
}

func jsonOr(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// tx runs fn in one write transaction. The request's cancellation does not
// reach it: a store whose sidecar is committed must reach the index too.
func (x *index) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	ctx = context.WithoutCancel(ctx)
	defer x.preparePending()
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return indexErr(err)
	}
	if err := tx.Commit(); err != nil {
		return indexErr(fmt.Errorf("index: commit: %w", err))
	}
	return nil
}

// SQLite's primary result codes the store tells apart.
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

// indexErr maps an index failure a client must hear about: a full disk is
// ErrNoSpace (507), as it is for the bytes.
func indexErr(err error) error {
	if sqliteCode(err) == sqliteFull {
		return fmt.Errorf("%w (index)", ErrNoSpace)
	}
	return mapErr(err)
}

// preparePending prepares the write statements seen since the last call.
func (x *index) preparePending() {
	x.pending.Range(func(q, _ any) bool {
		x.pending.Delete(q)
		x.prep(x.w, q.(string))
		return true
	})
}

// prefixRange returns the bounds of the keys strictly below dir.
func prefixRange(dir string) (lo, hi string) {
	if dir == "" {
		return "", "\U0010FFFF"
	}
	return dir + "/", dir + "0" // '0' is the byte after '/'
}
