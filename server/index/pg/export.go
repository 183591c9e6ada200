package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
)

var (
	_ index.Exporter = (*DB)(nil)
	_ index.Importer = (*DB)(nil)
)

// Dirs implements index.Exporter, a page at a time: fn runs with no
// connection held.
func (x *DB) Dirs(ctx context.Context, after string, fn func(index.Dir) error) error {
	for {
		var page []index.Dir
		err := x.readPage(ctx, func(rows pgx.Rows) error {
			d, err := scanDir(rows)
			page = append(page, d)
			return err
		}, `SELECT `+dirCols+` FROM attachd_dirs WHERE key > $1 ORDER BY key LIMIT $2`, after, pageSize)
		if err != nil {
			return fmt.Errorf("index: folders: %w", err)
		}
		for _, d := range page {
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

const queuedCols = `id, event_id, sink, type, key, blob, prev_blob, sha256, size, content_type,
	doc_id, media_id, request_id, occurred, attempts, next_at, state = 'dead', last_error, reason`

// Deliveries implements index.Exporter, a page at a time.
func (x *DB) Deliveries(ctx context.Context, after int64, fn func(index.QueuedDelivery) error) error {
	for {
		var page []index.QueuedDelivery
		err := x.readPage(ctx, func(rows pgx.Rows) error {
			var q index.QueuedDelivery
			d := &q.Delivery
			var occurred, next int64
			if err := rows.Scan(&d.ID, &d.EventID, &d.Sink, &d.Type, &d.Key, &d.Blob, &d.PrevBlob, &d.SHA256, &d.Size,
				&d.ContentType, &d.DocID, &d.MediaID, &d.RequestID, &occurred, &d.Attempts, &next, &q.Dead, &q.Error, &d.Reason); err != nil {
				return err
			}
			d.Occurred, q.Next = time.Unix(0, occurred), time.Unix(0, next)
			page = append(page, q)
			return nil
		}, `SELECT `+queuedCols+` FROM attachd_outbox WHERE id > $1 ORDER BY id LIMIT $2`, after, pageSize)
		if err != nil {
			return fmt.Errorf("outbox: read: %w", err)
		}
		for _, q := range page {
			if err := fn(q); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// ImportDeliveries implements index.Importer, in one statement.
func (x *DB) ImportDeliveries(ctx context.Context, ds []index.QueuedDelivery) (int64, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	n := len(ds)
	var (
		eventIDs, sinks, types, keys, blobs, prevBlobs, sums = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		cts, docIDs, mediaIDs, reqIDs, states, errs, reasons = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sizes, occurred, next = make([]int64, n), make([]int64, n), make([]int64, n)
		attempts              = make([]int32, n)
	)
	for i, q := range ds {
		d := q.Delivery
		eventIDs[i], sinks[i], types[i], keys[i], blobs[i], prevBlobs[i], sums[i] =
			d.EventID, d.Sink, d.Type, d.Key, d.Blob, d.PrevBlob, d.SHA256
		cts[i], docIDs[i], mediaIDs[i], reqIDs[i], errs[i] =
			clean(d.ContentType), clean(d.DocID), clean(d.MediaID), clean(d.RequestID), clean(q.Error)
		sizes[i], occurred[i], next[i], attempts[i] = d.Size, d.Occurred.UnixNano(), q.Next.UnixNano(), int32(d.Attempts)
		reasons[i] = clean(d.Reason)
		states[i] = "pending"
		if q.Dead {
			states[i] = "dead"
		}
	}
	var added int64
	err := x.update(ctx, nil, func(t *tx) error {
		// WITH ORDINALITY keeps their order, so that their IDs do too.
		tag, err := t.exec(`INSERT INTO attachd_outbox (event_id, sink, type, key, blob, prev_blob, sha256, size,
				content_type, doc_id, media_id, request_id, occurred, attempts, next_at, state, last_error, reason)
			SELECT d.event_id, d.sink, d.type, d.key, d.blob, d.prev_blob, d.sha256, d.size,
				d.content_type, d.doc_id, d.media_id, d.request_id, d.occurred, d.attempts, d.next_at, d.state, d.last_error, d.reason
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
				$9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::integer[], $15::bigint[],
				$16::text[], $17::text[], $18::text[]) WITH ORDINALITY
				AS d (event_id, sink, type, key, blob, prev_blob, sha256, size, content_type, doc_id, media_id,
					request_id, occurred, attempts, next_at, state, last_error, reason, n)
			WHERE NOT EXISTS (SELECT 1 FROM attachd_outbox o WHERE o.sink = d.sink AND o.key = d.key AND o.event_id = d.event_id)
			ORDER BY d.n`,
			eventIDs, sinks, types, keys, blobs, prevBlobs, sums, sizes, cts, docIDs, mediaIDs, reqIDs,
			occurred, attempts, next, states, errs, reasons)
		if err != nil {
			return err
		}
		added = tag.RowsAffected()
		t.enqueued = added > 0
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: import: %w", err)
	}
	return added, nil
}
