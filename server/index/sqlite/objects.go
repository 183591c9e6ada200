package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attachd/attachd/server/index"
)

// walkPage is how many objects tx.Walk reads at a time.
const walkPage = 256

const objectCols = `key, blob, size, sha256, content_type, doc_id, media_id, meta, props, created, updated, mtime`

type scanner interface{ Scan(...any) error }

func scanObject(row scanner) (index.Object, error) {
	var o index.Object
	var meta, props string
	var created, updated, mtime int64
	err := row.Scan(&o.Key, &o.Blob, &o.Size, &o.SHA256, &o.ContentType, &o.DocID, &o.MediaID,
		&meta, &props, &created, &updated, &mtime)
	if errors.Is(err, sql.ErrNoRows) {
		return o, index.ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("index: %w", err)
	}
	o.Meta = []byte(meta)
	o.Props = []byte(props)
	o.Created, o.Updated, o.ModTime = time.Unix(0, created), time.Unix(0, updated), time.Unix(0, mtime)
	return o, nil
}

// scanObjects calls fn for each row, and closes rows.
func scanObjects(rows *sql.Rows, fn func(index.Object) error) error {
	defer rows.Close()
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Get implements index.Index.
func (x *DB) Get(ctx context.Context, key string) (index.Object, error) {
	return scanObject(x.queryRow(ctx, `SELECT `+objectCols+` FROM objects WHERE key = ?`, key))
}

// Longest implements index.Index.
func (x *DB) Longest(ctx context.Context, keys []string) (index.Object, error) {
	if len(keys) == 0 {
		return index.Object{}, index.ErrNotFound
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	q := `SELECT ` + objectCols + ` FROM objects WHERE key IN (?` + strings.Repeat(",?", len(keys)-1) +
		`) ORDER BY length(key) DESC LIMIT 1`
	return scanObject(x.queryRow(ctx, q, args...))
}

// ByID implements index.Index.
func (x *DB) ByID(ctx context.Context, id, under string) (index.Object, error) {
	lo, hi := index.Below(under)
	return scanObject(x.queryRow(ctx, `SELECT `+objectCols+` FROM objects
		WHERE key IN (SELECT key FROM objects WHERE media_id = ?1 UNION SELECT key FROM objects WHERE doc_id = ?1)
		ORDER BY (key > ?2 AND key < ?3) DESC, updated DESC LIMIT 1`, id, lo, hi))
}

// BlobInUse implements index.Index.
func (x *DB) BlobInUse(ctx context.Context, blob string) (bool, error) {
	var one int
	err := x.queryRow(ctx, blobInUseQuery, blob).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("index: %w", err)
	}
	return true, nil
}

// blobInUseQuery runs at every overwrite and delete: the objects_blob index
// answers it (TestBlobInUseReadsAnIndex).
const blobInUseQuery = `SELECT 1 FROM objects WHERE blob = ? LIMIT 1`

// BlobsInUse implements index.Index. The blobs go in as one JSON array, so
// that any number of them is one statement, each looked up in objects_blob.
func (x *DB) BlobsInUse(ctx context.Context, blobs []string) (map[string]bool, error) {
	list, err := json.Marshal(blobs)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	rows, err := x.r.QueryContext(ctx, blobsInUseQuery, string(list))
	if err != nil {
		return nil, fmt.Errorf("index: blobs in use: %w", err)
	}
	defer rows.Close()
	used := map[string]bool{}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("index: blobs in use: %w", err)
		}
		used[b] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: blobs in use: %w", err)
	}
	return used, nil
}

// blobsInUseQuery reads objects_blob once per blob (TestBlobInUseReadsAnIndex).
const blobsInUseQuery = `SELECT DISTINCT blob FROM objects WHERE blob IN (SELECT value FROM json_each(?))`

// Walk implements index.Index.
func (x *DB) Walk(ctx context.Context, prefix string, fn func(index.Object) error) error {
	lo, hi := index.Below(prefix)
	rows, err := x.r.QueryContext(ctx, `SELECT `+objectCols+` FROM objects WHERE key > ? AND key < ? ORDER BY key`, lo, hi)
	if err != nil {
		return fmt.Errorf("index: walk objects: %w", err)
	}
	return scanObjects(rows, fn)
}

// Usage implements index.Index: the folder's row in folder_usage if it
// has one, else the sum of the objects below it.
func (x *DB) Usage(ctx context.Context, prefix string) (bytes, objects int64, err error) {
	err = x.queryRow(ctx, `SELECT bytes, objects FROM folder_usage WHERE prefix = ?`, prefix).Scan(&bytes, &objects)
	if errors.Is(err, sql.ErrNoRows) {
		lo, hi := index.Below(prefix)
		err = x.queryRow(ctx, `SELECT COALESCE(SUM(size), 0), COUNT(*) FROM objects WHERE key > ? AND key < ?`, lo, hi).Scan(&bytes, &objects)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("index: usage: %w", err)
	}
	return bytes, objects, nil
}

// TrackUsage implements index.Index. A folder it starts keeping is summed
// once, in the transaction that adds its row and the triggers, so no
// change slips between the sum and the triggers that keep it from then on.
// With no folder to keep, it drops the triggers with the rows.
func (x *DB) TrackUsage(ctx context.Context, prefixes []string) error {
	return x.update(ctx, func(t *tx) error {
		args := make([]any, len(prefixes))
		for i, p := range prefixes {
			args[i] = p
		}
		q := `DELETE FROM folder_usage WHERE prefix NOT IN (` + strings.TrimSuffix(strings.Repeat("?,", len(args)), ",") + `)`
		if _, err := t.exec(q, args...); err != nil {
			return fmt.Errorf("index: track usage: %w", err)
		}
		for _, tr := range usageTriggers {
			q := `CREATE TRIGGER IF NOT EXISTS ` + tr.name + ` ` + tr.sql
			if len(prefixes) == 0 {
				q = `DROP TRIGGER IF EXISTS ` + tr.name
			}
			if _, err := t.exec(q); err != nil {
				return fmt.Errorf("index: track usage: %w", err)
			}
		}
		for _, p := range prefixes {
			res, err := t.exec(`INSERT INTO folder_usage (prefix, bytes, objects) VALUES (?, 0, 0) ON CONFLICT DO NOTHING`, p)
			if err != nil {
				return fmt.Errorf("index: track usage of %q: %w", p, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("index: track usage of %q: %w", p, err)
			} else if n == 0 {
				continue // kept already
			}
			lo, hi := index.Below(p)
			if _, err := t.exec(`UPDATE folder_usage SET (bytes, objects) =
				(SELECT COALESCE(SUM(size), 0), COUNT(*) FROM objects WHERE key > ? AND key < ?) WHERE prefix = ?`, lo, hi, p); err != nil {
				return fmt.Errorf("index: track usage of %q: %w", p, err)
			}
		}
		return nil
	})
}

const dirCols = `key, props, created, mtime`

func scanDir(row scanner) (index.Dir, error) {
	var d index.Dir
	var props string
	if err := row.Scan(&d.Key, &props, &d.Created, &d.ModTime); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, index.ErrNotFound
		}
		return d, fmt.Errorf("index: %w", err)
	}
	d.Props = []byte(props)
	return d, nil
}

// Dir implements index.Index.
func (x *DB) Dir(ctx context.Context, key string) (index.Dir, error) {
	return scanDir(x.queryRow(ctx, `SELECT `+dirCols+` FROM dirs WHERE key = ?`, key))
}

// List implements index.Index. The folders are read whole before fn sees
// any, so that fn may take its time without holding a connection twice.
func (x *DB) List(ctx context.Context, parent string, fields index.Fields, fn func(index.Entry) error) error {
	rows, err := x.query(ctx, `SELECT `+dirCols+` FROM dirs WHERE parent = ? ORDER BY key`, parent)
	if err != nil {
		return fmt.Errorf("index: list folders: %w", err)
	}
	var ds []index.Entry
	for rows.Next() {
		d, err := scanDir(rows)
		if err != nil {
			rows.Close()
			return err
		}
		ds = append(ds, index.Entry{Key: d.Key, Name: name(d.Key), IsDir: true, Dir: d})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: list folders: %w", err)
	}
	for _, e := range ds {
		if err := fn(e); err != nil {
			return err
		}
	}
	each := func(o index.Object) error { return fn(index.Entry{Key: o.Key, Name: name(o.Key), Object: o}) }
	if fields == index.AllFields {
		rows, err := x.query(ctx, `SELECT `+objectCols+` FROM objects WHERE parent = ? ORDER BY key`, parent)
		if err != nil {
			return fmt.Errorf("index: list objects: %w", err)
		}
		return scanObjects(rows, each)
	}
	return x.listLean(ctx, parent, fields == index.ListFieldsMeta, each)
}

func name(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

// listLean lists the objects in parent without the fields a WebDAV listing
// never shows. Each row comes back as one string that is split here: with
// modernc.org/sqlite every column read costs a trip through its C-to-Go
// layer, and for a 10 000-file PROPFIND the per-column reads were most of
// the time. Meta is left nil unless withMeta.
func (x *DB) listLean(ctx context.Context, parent string, withMeta bool, fn func(index.Object) error) error {
	meta := `''`
	if withMeta {
		meta = `meta`
	}
	// Fields are joined with NUL. Keys escape it, hashes, numbers and the
	// JSON the store writes cannot hold it, and the metadata comes last; the
	// texts a client supplied lose theirs.
	rows, err := x.query(ctx, `SELECT concat_ws(char(0), key, size, sha256,
		replace(content_type, char(0), ''), replace(doc_id, char(0), ''), replace(media_id, char(0), ''),
		created, mtime, props, `+meta+`) FROM objects WHERE parent = ? ORDER BY key`, parent)
	if err != nil {
		return fmt.Errorf("index: list objects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		o, err := splitLean(row, withMeta)
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return rows.Err()
}

func splitLean(row string, withMeta bool) (index.Object, error) {
	var f [10]string
	for i := range 9 {
		j := strings.IndexByte(row, 0)
		if j < 0 {
			return index.Object{}, fmt.Errorf("index: malformed listing row")
		}
		f[i], row = row[:j], row[j+1:]
	}
	f[9] = row
	size, _ := strconv.ParseInt(f[1], 10, 64)
	created, _ := strconv.ParseInt(f[6], 10, 64)
	mtime, _ := strconv.ParseInt(f[7], 10, 64)
	o := index.Object{Key: f[0], Size: size, SHA256: f[2], ContentType: f[3], DocID: f[4], MediaID: f[5],
		Created: time.Unix(0, created), ModTime: time.Unix(0, mtime), Props: []byte(f[8])}
	if withMeta {
		o.Meta = []byte(f[9])
	}
	return o, nil
}

func jsonOr(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

// PutObject implements index.Tx.
func (t *tx) PutObject(o index.Object) error {
	_, err := t.exec(insertObject+`
		ON CONFLICT(key) DO UPDATE SET blob=excluded.blob, size=excluded.size, sha256=excluded.sha256,
		content_type=excluded.content_type, doc_id=excluded.doc_id, media_id=excluded.media_id,
		meta=excluded.meta, props=excluded.props, created=excluded.created, updated=excluded.updated, mtime=excluded.mtime,
		`+recUpdate, objectArgs(o)...)
	if err != nil {
		return fmt.Errorf("index object %q: %w", o.Key, err)
	}
	return t.PutDirs(index.Parent(o.Key), o.Updated)
}

// SwapObject implements index.Tx.
func (t *tx) SwapObject(o index.Object) (old index.Object, found bool, err error) {
	old, err = t.Get(o.Key)
	switch {
	case err == nil:
		found = true
	case !errors.Is(err, index.ErrNotFound):
		return index.Object{}, false, err
	}
	return old, found, t.PutObject(o)
}

// CreateObject implements index.Tx.
func (t *tx) CreateObject(o index.Object) (bool, error) {
	res, err := t.exec(insertObject+`
		ON CONFLICT(key) DO NOTHING`, objectArgs(o)...)
	if err != nil {
		return false, fmt.Errorf("index object %q: %w", o.Key, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, t.PutDirs(index.Parent(o.Key), o.Updated)
}

// insertObject inserts a row of objectArgs; PutObject and CreateObject add
// what a row already there makes it do.
const insertObject = `INSERT INTO objects (` + objectCols + `, parent, ` + recCols + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?)`

// objectArgs are the values of an objects row for o, in the order of
// objectCols, parent, recCols.
func objectArgs(o index.Object) []any {
	return append([]any{o.Key, o.Blob, o.Size, o.SHA256, o.ContentType, o.DocID, o.MediaID, jsonOr(o.Meta), jsonOr(o.Props),
		o.Created.UnixNano(), o.Updated.UnixNano(), o.ModTime.UnixNano(), index.Parent(o.Key)}, recArgs(index.Describe(o))...)
}

// DeleteObject implements index.Tx.
func (t *tx) DeleteObject(key string) error {
	if _, err := t.exec(`DELETE FROM objects WHERE key = ?`, key); err != nil {
		return fmt.Errorf("index: delete object %q: %w", key, err)
	}
	return nil
}

// PutDirs implements index.Tx.
func (t *tx) PutDirs(key string, at time.Time) error {
	for key != "" {
		parent := index.Parent(key)
		res, err := t.exec(`INSERT INTO dirs (key, parent, props, created, mtime) VALUES (?,?,'{}',?,?)
			ON CONFLICT(key) DO NOTHING`, key, parent, at.UnixNano(), at.UnixNano())
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

// UpdateDir implements index.Tx.
func (t *tx) UpdateDir(d index.Dir) error {
	if _, err := t.exec(`UPDATE dirs SET props = ?, mtime = ? WHERE key = ?`, jsonOr(d.Props), d.ModTime, d.Key); err != nil {
		return fmt.Errorf("index: update folder %q: %w", d.Key, err)
	}
	return nil
}

// DeleteTree implements index.Tx.
func (t *tx) DeleteTree(key string) error {
	lo, hi := index.Below(key)
	if _, err := t.exec(`DELETE FROM objects WHERE key > ? AND key < ?`, lo, hi); err != nil {
		return fmt.Errorf("index: delete folder %q: %w", key, err)
	}
	if _, err := t.exec(`DELETE FROM dirs WHERE key = ? OR (key > ? AND key < ?)`, key, lo, hi); err != nil {
		return fmt.Errorf("index: delete folder %q: %w", key, err)
	}
	return nil
}

// MoveTree implements index.Tx.
func (t *tx) MoveTree(src, dst string) error {
	lo, hi := index.Below(src)
	n := utf8.RuneCountInString(src) + 1 // substr counts characters from 1: the rest of the key after src
	for _, q := range []string{
		`UPDATE objects SET key = ?1 || substr(key, ?2), parent = ?1 || substr(parent, ?2) WHERE key > ?3 AND key < ?4`,
		`UPDATE dirs SET key = ?1 || substr(key, ?2), parent = ?1 || substr(parent, ?2) WHERE key > ?3 AND key < ?4`,
	} {
		if _, err := t.exec(q, dst, n, lo, hi); err != nil {
			return fmt.Errorf("index: move folder: %w", err)
		}
	}
	if _, err := t.exec(`UPDATE dirs SET key = ?, parent = ? WHERE key = ?`, dst, index.Parent(dst), src); err != nil {
		return fmt.Errorf("index: move folder: %w", err)
	}
	if !index.AccountMoves(src, dst) {
		return nil
	}
	return t.Walk(dst, func(o index.Object) error {
		if _, err := t.exec(`UPDATE objects SET rec_account = ? WHERE key = ?`, index.Describe(o).Account, o.Key); err != nil {
			return fmt.Errorf("index: move folder: %w", err)
		}
		return nil
	})
}

// ClearObjects implements index.Tx.
func (t *tx) ClearObjects() error {
	if _, err := t.exec(`DELETE FROM objects`); err != nil {
		return fmt.Errorf("index: clear objects: %w", err)
	}
	return nil
}

// PruneDirs implements index.Tx.
func (t *tx) PruneDirs(keep func(key string) bool) error {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT key FROM dirs`)
	if err != nil {
		return fmt.Errorf("index: prune folders: %w", err)
	}
	var gone []string
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			rows.Close()
			return fmt.Errorf("index: prune folders: %w", err)
		}
		if !keep(key) {
			gone = append(gone, key)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: prune folders: %w", err)
	}
	for _, key := range gone {
		if _, err := t.exec(`DELETE FROM dirs WHERE key = ?`, key); err != nil {
			return fmt.Errorf("index: prune folders: %w", err)
		}
	}
	return nil
}

// Get implements index.Tx.
func (t *tx) Get(key string) (index.Object, error) {
	return scanObject(t.queryRow(`SELECT `+objectCols+` FROM objects WHERE key = ?`, key))
}

// KeptUsage implements index.Tx.
func (t *tx) KeptUsage(prefix string) (bytes, objects int64, err error) {
	err = t.queryRow(`SELECT bytes, objects FROM folder_usage WHERE prefix = ?`, prefix).Scan(&bytes, &objects)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, 0, index.ErrNotFound
	case err != nil:
		return 0, 0, fmt.Errorf("index: usage: %w", err)
	}
	return bytes, objects, nil
}

// Walk implements index.Tx.
func (t *tx) Walk(prefix string, fn func(index.Object) error) error {
	lo, hi := index.Below(prefix)
	for {
		// Read a page whole before fn sees it: fn may write in this
		// transaction, and SQLite would run its statements beside an open
		// query on the same connection.
		rows, err := t.tx.QueryContext(t.ctx, `SELECT `+objectCols+` FROM objects
			WHERE key > ? AND key < ? ORDER BY key LIMIT ?`, lo, hi, walkPage)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		page := make([]index.Object, 0, walkPage)
		if err := scanObjects(rows, func(o index.Object) error { page = append(page, o); return nil }); err != nil {
			return err
		}
		for _, o := range page {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(page) < walkPage {
			return nil
		}
		lo = page[len(page)-1].Key
	}
}
