package pg

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
)

// recCols are the columns of index.Recording, derived at PutObject.
const recCols = `rec_v, rec_at, rec_kind, rec_account, rec_mailbox, rec_caller_name, rec_caller_number, rec_text, rec_duration`

const recUpdate = `rec_v = excluded.rec_v, rec_at = excluded.rec_at, rec_kind = excluded.rec_kind,
	rec_account = excluded.rec_account, rec_mailbox = excluded.rec_mailbox, rec_caller_name = excluded.rec_caller_name,
	rec_caller_number = excluded.rec_caller_number, rec_text = excluded.rec_text, rec_duration = excluded.rec_duration`

// recArgs are the values of recCols. The texts come from client-supplied
// metadata, so they are cleaned (clean).
func recArgs(r index.Recording) []any {
	return []any{index.RecordingVersion, r.At.UnixNano(), clean(r.Kind), clean(r.Account), clean(r.Mailbox),
		clean(r.CallerName), clean(r.CallerNumber), clean(r.SearchText()), r.Duration.Milliseconds()}
}

// backfillRecordings derives the Recording of the objects indexed before
// migration 3, or under older rules, a thousand per transaction. Nodes
// that start at once share the work: each skips the rows another holds.
func (x *DB) backfillRecordings(ctx context.Context) error {
	for {
		n, err := x.backfillBatch(ctx)
		if err != nil {
			return fmt.Errorf("postgres index at %s: derive recordings: %w", x.addr, x.fail(nil, err))
		}
		if n == 0 {
			return nil
		}
	}
}

func (x *DB) backfillBatch(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, schemaTimeout)
	defer cancel()
	tx, err := x.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT key, content_type, meta, created FROM attachd_objects
		WHERE rec_v < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED`, index.RecordingVersion)
	if err != nil {
		return 0, err
	}
	var objs []index.Object
	for rows.Next() {
		var o index.Object
		var meta string
		var created int64
		if err := rows.Scan(&o.Key, &o.ContentType, &meta, &created); err != nil {
			rows.Close()
			return 0, err
		}
		o.Meta, o.Created = []byte(meta), time.Unix(0, created)
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	for _, o := range objs {
		b.Queue(`UPDATE attachd_objects SET rec_v = $1, rec_at = $2, rec_kind = $3, rec_account = $4, rec_mailbox = $5,
			rec_caller_name = $6, rec_caller_number = $7, rec_text = $8, rec_duration = $9 WHERE key = $10`,
			append(recArgs(index.Describe(o)), o.Key)...)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return len(objs), tx.Commit(ctx)
}

const hitCols = `key, size, sha256, content_type, doc_id, media_id, created, mtime,
	rec_at, rec_kind, rec_account, rec_mailbox, rec_caller_name, rec_caller_number, rec_duration`

// Search implements index.Index.
func (x *DB) Search(ctx context.Context, q index.Query) ([]index.Hit, error) {
	var args []any
	where := q.SQLWhere(func(v any) string {
		if s, ok := v.(string); ok {
			v = clean(s)
		}
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}, func(col, sub string) string { return "strpos(" + col + ", " + sub + ") > 0" })
	args = append(args, q.SearchLimit())
	var hits []index.Hit
	err := x.readPage(ctx, func(rows pgx.Rows) error {
		var h index.Hit
		var created, mtime, at, dur int64
		if err := rows.Scan(&h.Key, &h.Size, &h.SHA256, &h.ContentType, &h.DocID, &h.MediaID, &created, &mtime,
			&at, &h.Kind, &h.Account, &h.Mailbox, &h.CallerName, &h.CallerNumber, &dur); err != nil {
			return err
		}
		h.Created, h.ModTime, h.At = time.Unix(0, created), time.Unix(0, mtime), time.Unix(0, at)
		h.Duration = time.Duration(dur) * time.Millisecond
		hits = append(hits, h)
		return nil
	}, `SELECT `+hitCols+` FROM attachd_objects WHERE `+where+`
		ORDER BY rec_at DESC, key DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("index: search: %w", err)
	}
	return hits, nil
}

// Groups implements index.Index.
func (x *DB) Groups(ctx context.Context, under, account string) ([]index.Group, error) {
	lo, hi := index.Below(under)
	q := `SELECT rec_account, COUNT(*), MAX(rec_at) FROM attachd_objects WHERE key > $1 AND key < $2
		GROUP BY rec_account ORDER BY rec_account`
	args := []any{lo, hi}
	if account != "" {
		q = `SELECT rec_mailbox, COUNT(*), MAX(rec_at) FROM attachd_objects WHERE key > $1 AND key < $2 AND rec_account = $3
			GROUP BY rec_mailbox ORDER BY rec_mailbox`
		args = append(args, clean(account))
	}
	var gs []index.Group
	err := x.readPage(ctx, func(rows pgx.Rows) error {
		var g index.Group
		var latest int64
		if err := rows.Scan(&g.Value, &g.Count, &latest); err != nil {
			return err
		}
		g.Latest = time.Unix(0, latest)
		gs = append(gs, g)
		return nil
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("index: groups: %w", err)
	}
	return gs, nil
}
