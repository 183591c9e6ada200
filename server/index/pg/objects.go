package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
)

// pageSize is how many rows one read of a listing or walk fetches: each
// page is one query under its own deadline, and fn runs between them with
// no connection held.
const pageSize = 1000

const objectCols = `key, blob, size, sha256, content_type, doc_id, media_id, meta, props, created, updated, mtime`

// leanCols is what a WebDAV listing shows (index.ListFields), and meta.
const leanCols = `key, size, sha256, content_type, doc_id, media_id, created, mtime, props`

func scanObject(row pgx.Row) (index.Object, error) {
	var o index.Object
	var meta, props string
	var created, updated, mtime int64
	err := row.Scan(&o.Key, &o.Blob, &o.Size, &o.SHA256, &o.ContentType, &o.DocID, &o.MediaID,
		&meta, &props, &created, &updated, &mtime)
	if err != nil {
		return o, err
	}
	o.Meta = []byte(meta)
	o.Props = []byte(props)
	o.Created, o.Updated, o.ModTime = time.Unix(0, created), time.Unix(0, updated), time.Unix(0, mtime)
	return o, nil
}

func scanLean(row pgx.Row, withMeta bool) (index.Object, error) {
	var o index.Object
	var props, meta string
	var created, mtime int64
	dest := []any{&o.Key, &o.Size, &o.SHA256, &o.ContentType, &o.DocID, &o.MediaID, &created, &mtime, &props}
	if withMeta {
		dest = append(dest, &meta)
	}
	if err := row.Scan(dest...); err != nil {
		return o, err
	}
	o.Props = []byte(props)
	if withMeta {
		o.Meta = []byte(meta)
	}
	o.Created, o.ModTime = time.Unix(0, created), time.Unix(0, mtime)
	return o, nil
}

// getObject runs a query for one object.
func (x *DB) getObject(ctx context.Context, what, q string, args ...any) (index.Object, error) {
	rctx, cancel := read(ctx)
	defer cancel()
	o, err := scanObject(x.pool.QueryRow(rctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return o, index.ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("index: %s: %w", what, x.fail(ctx, err))
	}
	return o, nil
}

// Get implements index.Index.
func (x *DB) Get(ctx context.Context, key string) (index.Object, error) {
	return x.getObject(ctx, "get", `SELECT `+objectCols+` FROM attachd_objects WHERE key = $1`, key)
}

// Longest implements index.Index.
func (x *DB) Longest(ctx context.Context, keys []string) (index.Object, error) {
	if len(keys) == 0 {
		return index.Object{}, index.ErrNotFound
	}
	return x.getObject(ctx, "get", `SELECT `+objectCols+` FROM attachd_objects WHERE key = ANY($1)
		ORDER BY length(key) DESC LIMIT 1`, keys)
}

// ByID implements index.Index. An empty id names nothing (the store never
// asks for one): saying so lets the partial indexes serve.
func (x *DB) ByID(ctx context.Context, id, under string) (index.Object, error) {
	lo, hi := index.Below(under)
	return x.getObject(ctx, "find by id", `SELECT `+objectCols+` FROM attachd_objects WHERE key IN (
			SELECT key FROM attachd_objects WHERE media_id = $1 AND media_id <> ''
			UNION SELECT key FROM attachd_objects WHERE doc_id = $1 AND doc_id <> '')
		ORDER BY (key > $2 AND key < $3) DESC, updated DESC, key LIMIT 1`, id, lo, hi)
}

// BlobInUse implements index.Index.
func (x *DB) BlobInUse(ctx context.Context, blob string) (bool, error) {
	rctx, cancel := read(ctx)
	defer cancel()
	var in bool
	err := x.pool.QueryRow(rctx, `SELECT EXISTS (SELECT 1 FROM attachd_objects WHERE blob = $1)`, blob).Scan(&in)
	if err != nil {
		return false, fmt.Errorf("index: %w", x.fail(ctx, err))
	}
	return in, nil
}

// BlobsInUse implements index.Index.
func (x *DB) BlobsInUse(ctx context.Context, blobs []string) (map[string]bool, error) {
	rctx, cancel := read(ctx)
	defer cancel()
	rows, err := x.pool.Query(rctx, `SELECT DISTINCT blob FROM attachd_objects WHERE blob = ANY($1)`, blobs)
	if err != nil {
		return nil, fmt.Errorf("index: %w", x.fail(ctx, err))
	}
	used := map[string]bool{}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, fmt.Errorf("index: %w", x.fail(ctx, err))
		}
		used[b] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: %w", x.fail(ctx, err))
	}
	return used, nil
}

// Usage implements index.Index: the folder's row in attachd_folder_usage
// if it has one, else the sum of the objects below it. Two statements, not
// one: a single statement that sums only without a row still has the sum
// planned, and PostgreSQL starts the parallel workers of that plan even
// when it skips their scan (tens of milliseconds for nothing on every read
// of a row).
func (x *DB) Usage(ctx context.Context, prefix string) (bytes, objects int64, err error) {
	rctx, cancel := read(ctx)
	defer cancel()
	err = x.pool.QueryRow(rctx, `SELECT bytes, objects FROM attachd_folder_usage WHERE prefix = $1`, prefix).Scan(&bytes, &objects)
	if errors.Is(err, pgx.ErrNoRows) {
		lo, hi := index.Below(prefix)
		err = x.pool.QueryRow(rctx, `SELECT COALESCE(SUM(size), 0)::bigint, COUNT(*) FROM attachd_objects
			WHERE key > $1 AND key < $2`, lo, hi).Scan(&bytes, &objects)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("index: usage: %w", x.fail(ctx, err))
	}
	return bytes, objects, nil
}

// TrackUsage implements index.Index. The rows are kept by usageTriggers,
// which exist only while there are rows, in the transaction of each change;
// writers already take turns on the version row, so a row makes none of
// them wait. A folder it starts keeping is summed once, in a write
// transaction, before the triggers are made: writers wait on the version
// row meanwhile, so no change comes between. The nodes of a cluster share
// the rows and the last to call sets the folders: a folder whose row another
// node dropped (its configuration differs) is summed at each read instead,
// slower but never wrong, and not checked again inside a store's transaction.
func (x *DB) TrackUsage(ctx context.Context, prefixes []string) error {
	if prefixes == nil {
		prefixes = []string{}
	}
	names := make([]string, len(usageTriggers))
	for i, tr := range usageTriggers {
		names[i] = tr.name
	}
	err := x.update(ctx, nil, func(t *tx) error {
		if _, err := t.exec(`DELETE FROM attachd_folder_usage WHERE prefix <> ALL($1)`, prefixes); err != nil {
			return err
		}
		for _, p := range prefixes {
			lo, hi := index.Below(p)
			if _, err := t.exec(`INSERT INTO attachd_folder_usage (prefix, bytes, objects)
				SELECT $1, COALESCE(SUM(size), 0), COUNT(*) FROM attachd_objects WHERE key > $2 AND key < $3
					HAVING NOT EXISTS (SELECT 1 FROM attachd_folder_usage WHERE prefix = $1)`, p, lo, hi); err != nil {
				return err
			}
		}
		have := map[string]bool{}
		if err := t.query(func(r pgx.Rows) error {
			var name string
			err := r.Scan(&name)
			have[name] = true
			return err
		}, `SELECT tgname FROM pg_trigger WHERE tgrelid = 'attachd_objects'::regclass AND tgname = ANY($1)`, names); err != nil {
			return err
		}
		// DDL only when the state changes, and never waiting long for the
		// table: every node's reads and writes would queue behind it.
		// Making a trigger lets reads go on; dropping one does not.
		var ddl []string
		for _, tr := range usageTriggers {
			switch want := len(prefixes) > 0; {
			case want && !have[tr.name]:
				ddl = append(ddl, tr.sql)
			case !want && have[tr.name]:
				ddl = append(ddl, `DROP TRIGGER `+tr.name+` ON attachd_objects`)
			}
		}
		if len(ddl) > 0 {
			ddl = append([]string{`SET LOCAL lock_timeout = '2s'`}, ddl...)
		}
		for _, q := range ddl {
			if _, err := t.exec(q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: track usage: %w", err)
	}
	return nil
}

// readPage runs one read and calls fn for each row, under one deadline.
func (x *DB) readPage(ctx context.Context, fn func(pgx.Rows) error, q string, args ...any) error {
	rctx, cancel := read(ctx)
	defer cancel()
	rows, err := x.pool.Query(rctx, q, args...)
	if err != nil {
		return x.fail(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return x.fail(ctx, err)
		}
	}
	return x.fail(ctx, rows.Err())
}

// pages reads objects page by page, the next after the last key of the one
// before, and calls fn for each between the reads. q selects objects with
// key > $1, in key order, with the other arguments args, and takes its
// limit from the last argument.
func pages(read func(q string, args []any, each func(pgx.Rows) error) error,
	q string, args []any, scan func(pgx.Rows) (index.Object, error), fn func(index.Object) error) error {
	after := ""
	for {
		var page []index.Object
		err := read(q, append([]any{after}, append(args, pageSize)...), func(rows pgx.Rows) error {
			o, err := scan(rows)
			if err != nil {
				return err
			}
			page = append(page, o)
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range page {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

const walkSQL = `SELECT ` + objectCols + ` FROM attachd_objects WHERE key > $1 AND key > $2 AND key < $3
	ORDER BY key LIMIT $4`

// Walk implements index.Index.
func (x *DB) Walk(ctx context.Context, prefix string, fn func(index.Object) error) error {
	return walk(func(q string, args []any, each func(pgx.Rows) error) error {
		return x.readPage(ctx, each, q, args...)
	}, prefix, fn)
}

// walk is Walk with read running each page's query, on the pool or in a
// transaction. fn's error is returned as it is.
func walk(read func(q string, args []any, each func(pgx.Rows) error) error, prefix string, fn func(index.Object) error) error {
	lo, hi := index.Below(prefix)
	var fnErr error
	err := pages(read, walkSQL, []any{lo, hi}, func(r pgx.Rows) (index.Object, error) { return scanObject(r) },
		func(o index.Object) error {
			fnErr = fn(o)
			return fnErr
		})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("index: walk objects: %w", err)
	}
	return nil
}

const dirCols = `key, props, created, mtime`

func scanDir(row pgx.Row) (index.Dir, error) {
	var d index.Dir
	var props string
	if err := row.Scan(&d.Key, &props, &d.Created, &d.ModTime); err != nil {
		return d, err
	}
	d.Props = []byte(props)
	return d, nil
}

// Dir implements index.Index.
func (x *DB) Dir(ctx context.Context, key string) (index.Dir, error) {
	rctx, cancel := read(ctx)
	defer cancel()
	d, err := scanDir(x.pool.QueryRow(rctx, `SELECT `+dirCols+` FROM attachd_dirs WHERE key = $1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, index.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("index: folder: %w", x.fail(ctx, err))
	}
	return d, nil
}

// List implements index.Index. The folders are read whole, the objects a
// page at a time; fn runs with no connection held.
func (x *DB) List(ctx context.Context, parent string, fields index.Fields, fn func(index.Entry) error) error {
	var ds []index.Entry
	err := x.readPage(ctx, func(rows pgx.Rows) error {
		d, err := scanDir(rows)
		if err != nil {
			return err
		}
		ds = append(ds, index.Entry{Key: d.Key, Name: name(d.Key), IsDir: true, Dir: d})
		return nil
	}, `SELECT `+dirCols+` FROM attachd_dirs WHERE parent = $1 ORDER BY key`, parent)
	if err != nil {
		return fmt.Errorf("index: list folders: %w", err)
	}
	for _, e := range ds {
		if err := fn(e); err != nil {
			return err
		}
	}
	cols, scan := objectCols, func(r pgx.Rows) (index.Object, error) { return scanObject(r) }
	switch fields {
	case index.ListFields:
		cols, scan = leanCols, func(r pgx.Rows) (index.Object, error) { return scanLean(r, false) }
	case index.ListFieldsMeta:
		cols, scan = leanCols+`, meta`, func(r pgx.Rows) (index.Object, error) { return scanLean(r, true) }
	}
	var fnErr error
	err = pages(func(q string, args []any, each func(pgx.Rows) error) error {
		return x.readPage(ctx, each, q, args...)
	}, `SELECT `+cols+` FROM attachd_objects WHERE key > $1 AND parent = $2 ORDER BY key LIMIT $3`,
		[]any{parent}, scan, func(o index.Object) error {
			if err := fn(index.Entry{Key: o.Key, Name: name(o.Key), Object: o}); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("index: list objects: %w", err)
	}
	return nil
}

func name(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

func jsonOr(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return clean(string(b))
}

// folders returns key and the folders above it, deepest first, and the
// parent of each.
func folders(key string) (keys, parents []string) {
	for key != "" {
		p := index.Parent(key)
		keys, parents = append(keys, key), append(parents, p)
		key = p
	}
	return keys, parents
}

// putDirsSQL records the folders $1 (with parents $2) that are not yet, at $3.
const putDirsSQL = `INSERT INTO attachd_dirs (key, parent, props, created, mtime)
	SELECT d.key, d.parent, '{}', $3, $3 FROM unnest($1::text[], $2::text[]) AS d (key, parent)
	ON CONFLICT (key) DO NOTHING`

// upsertObject inserts or replaces a row of objectArgs.
const upsertObject = insertObject + `
	ON CONFLICT (key) DO UPDATE SET blob = excluded.blob, size = excluded.size, sha256 = excluded.sha256,
	content_type = excluded.content_type, doc_id = excluded.doc_id, media_id = excluded.media_id,
	meta = excluded.meta, props = excluded.props, created = excluded.created, updated = excluded.updated,
	mtime = excluded.mtime, ` + recUpdate

// PutObject implements index.Tx: the object and its folders in one statement.
func (t *tx) PutObject(o index.Object) error {
	_, err := t.exec(`WITH o AS (`+upsertObject+`) `+putDirsSQL, objectArgs(o)...)
	if err != nil {
		return fmt.Errorf("index object %q: %w", o.Key, err)
	}
	return nil
}

// SwapObject implements index.Tx: the row it replaces, the object and its
// folders in one statement. Every part of a statement sees the rows as they
// were when it began, so old is the row before the change; writers being
// serialized (the version bump), no other commit comes between.
func (t *tx) SwapObject(o index.Object) (old index.Object, found bool, err error) {
	err = t.query(func(r pgx.Rows) error {
		old, err = scanObject(r)
		found = err == nil
		return err
	}, `WITH old AS (SELECT `+objectCols+` FROM attachd_objects WHERE key = $4),
		o AS (`+upsertObject+`),
		d AS (`+putDirsSQL+`)
		SELECT `+objectCols+` FROM old`, objectArgs(o)...)
	if err != nil {
		return index.Object{}, false, fmt.Errorf("index object %q: %w", o.Key, err)
	}
	return old, found, nil
}

// CreateObject implements index.Tx: the folders in a CTE, so that the
// statement's row count is the object's.
func (t *tx) CreateObject(o index.Object) (bool, error) {
	tag, err := t.exec(`WITH d AS (`+putDirsSQL+`)
		`+insertObject+`
		ON CONFLICT (key) DO NOTHING`, objectArgs(o)...)
	if err != nil {
		return false, fmt.Errorf("index object %q: %w", o.Key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// insertObject inserts a row of objectArgs ($4 on); PutObject and
// CreateObject add what a row already there makes it do.
const insertObject = `INSERT INTO attachd_objects (` + objectCols + `, parent, ` + recCols + `)
	VALUES ($4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16, $17,$18,$19,$20,$21,$22,$23,$24,$25)`

// objectArgs are the parameters of PutObject's and CreateObject's
// statements: the folders ($1–$3), then the row.
func objectArgs(o index.Object) []any {
	parent := index.Parent(o.Key)
	keys, parents := folders(parent)
	return append([]any{keys, parents, o.Updated.UnixNano(),
		o.Key, o.Blob, o.Size, o.SHA256, clean(o.ContentType), clean(o.DocID), clean(o.MediaID),
		jsonOr(o.Meta), jsonOr(o.Props), o.Created.UnixNano(), o.Updated.UnixNano(), o.ModTime.UnixNano(), parent},
		recArgs(index.Describe(o))...)
}

// DeleteObject implements index.Tx.
func (t *tx) DeleteObject(key string) error {
	if _, err := t.exec(`DELETE FROM attachd_objects WHERE key = $1`, key); err != nil {
		return fmt.Errorf("index: delete object %q: %w", key, err)
	}
	return nil
}

// PutDirs implements index.Tx. It records every missing folder of key, in
// one statement.
func (t *tx) PutDirs(key string, at time.Time) error {
	if key == "" {
		return nil
	}
	keys, parents := folders(key)
	if _, err := t.exec(putDirsSQL, keys, parents, at.UnixNano()); err != nil {
		return fmt.Errorf("index folder %q: %w", key, err)
	}
	return nil
}

// UpdateDir implements index.Tx.
func (t *tx) UpdateDir(d index.Dir) error {
	if _, err := t.exec(`UPDATE attachd_dirs SET props = $1, mtime = $2 WHERE key = $3`,
		jsonOr(d.Props), d.ModTime, d.Key); err != nil {
		return fmt.Errorf("index: update folder %q: %w", d.Key, err)
	}
	return nil
}

// DeleteTree implements index.Tx.
func (t *tx) DeleteTree(key string) error {
	lo, hi := index.Below(key)
	if _, err := t.exec(`WITH o AS (DELETE FROM attachd_objects WHERE key > $2 AND key < $3)
		DELETE FROM attachd_dirs WHERE key = $1 OR (key > $2 AND key < $3)`, key, lo, hi); err != nil {
		return fmt.Errorf("index: delete folder %q: %w", key, err)
	}
	return nil
}

// MoveTree implements index.Tx.
func (t *tx) MoveTree(src, dst string) error {
	lo, hi := index.Below(src)
	n := utf8.RuneCountInString(src) + 1 // substr counts characters from 1: the rest of the key after src
	if _, err := t.exec(`WITH
			o AS (UPDATE attachd_objects SET key = $1 || substr(key, $2), parent = $1 || substr(parent, $2)
				WHERE key > $3 AND key < $4),
			d AS (UPDATE attachd_dirs SET key = $1 || substr(key, $2), parent = $1 || substr(parent, $2)
				WHERE key > $3 AND key < $4)
		UPDATE attachd_dirs SET key = $1, parent = $5 WHERE key = $6`,
		dst, n, lo, hi, index.Parent(dst), src); err != nil {
		return fmt.Errorf("index: move folder: %w", err)
	}
	if !index.AccountMoves(src, dst) {
		return nil
	}
	return t.Walk(dst, func(o index.Object) error {
		if _, err := t.exec(`UPDATE attachd_objects SET rec_account = $1 WHERE key = $2`, clean(index.Describe(o).Account), o.Key); err != nil {
			return fmt.Errorf("index: move folder: %w", err)
		}
		return nil
	})
}

// ClearObjects implements index.Tx.
func (t *tx) ClearObjects() error {
	if _, err := t.exec(`DELETE FROM attachd_objects`); err != nil {
		return fmt.Errorf("index: clear objects: %w", err)
	}
	return nil
}

// PruneDirs implements index.Tx.
func (t *tx) PruneDirs(keep func(key string) bool) error {
	var gone []string
	err := t.query(func(rows pgx.Rows) error {
		var key string
		if err := rows.Scan(&key); err != nil {
			return err
		}
		if !keep(key) {
			gone = append(gone, key)
		}
		return nil
	}, `SELECT key FROM attachd_dirs`)
	if err != nil {
		return fmt.Errorf("index: prune folders: %w", err)
	}
	if len(gone) == 0 {
		return nil
	}
	if _, err := t.exec(`DELETE FROM attachd_dirs WHERE key = ANY($1)`, gone); err != nil {
		return fmt.Errorf("index: prune folders: %w", err)
	}
	return nil
}

// KeptUsage implements index.Tx.
func (t *tx) KeptUsage(prefix string) (bytes, objects int64, err error) {
	found := false
	err = t.query(func(r pgx.Rows) error { found = true; return r.Scan(&bytes, &objects) },
		`SELECT bytes, objects FROM attachd_folder_usage WHERE prefix = $1`, prefix)
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("index: usage: %w", err)
	case !found:
		return 0, 0, index.ErrNotFound
	}
	return bytes, objects, nil
}

// Get implements index.Tx.
func (t *tx) Get(key string) (index.Object, error) {
	var objs []index.Object
	err := t.query(func(r pgx.Rows) error {
		o, err := scanObject(r)
		objs = append(objs, o)
		return err
	}, `SELECT `+objectCols+` FROM attachd_objects WHERE key = $1`, key)
	if err != nil {
		return index.Object{}, fmt.Errorf("index: %w", err)
	}
	if len(objs) == 0 {
		return index.Object{}, index.ErrNotFound
	}
	return objs[0], nil
}

// Walk implements index.Tx.
func (t *tx) Walk(prefix string, fn func(index.Object) error) error {
	return walk(func(q string, args []any, each func(pgx.Rows) error) error {
		return t.query(each, q, args...)
	}, prefix, fn)
}
