package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/attachd/attachd/server/index"
)

var (
	_ index.Exporter = (*DB)(nil)
	_ index.Importer = (*DB)(nil)
)

// Dirs implements index.Exporter.
func (x *DB) Dirs(ctx context.Context, after string, fn func(index.Dir) error) error {
	rows, err := x.r.QueryContext(ctx, `SELECT `+dirCols+` FROM dirs WHERE key > ? ORDER BY key`, after)
	if err != nil {
		return fmt.Errorf("index: folders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDir(rows)
		if err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return rows.Err()
}

const queuedCols = `id, event_id, sink, type, key, blob, prev_blob, sha256, size, content_type,
	doc_id, media_id, request_id, occurred, attempts, next_at, state = 'dead', last_error, reason`

// Deliveries implements index.Exporter.
func (x *DB) Deliveries(ctx context.Context, after int64, fn func(index.QueuedDelivery) error) error {
	rows, err := x.r.QueryContext(ctx, `SELECT `+queuedCols+` FROM outbox WHERE id > ? ORDER BY id`, after)
	if err != nil {
		return fmt.Errorf("outbox: read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q index.QueuedDelivery
		d := &q.Delivery
		var occurred, next int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.Sink, &d.Type, &d.Key, &d.Blob, &d.PrevBlob, &d.SHA256, &d.Size,
			&d.ContentType, &d.DocID, &d.MediaID, &d.RequestID, &occurred, &d.Attempts, &next, &q.Dead, &q.Error, &d.Reason); err != nil {
			return fmt.Errorf("outbox: read: %w", err)
		}
		d.Occurred, q.Next = time.Unix(0, occurred), time.Unix(0, next)
		if err := fn(q); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ImportDeliveries implements index.Importer.
func (x *DB) ImportDeliveries(ctx context.Context, ds []index.QueuedDelivery) (int64, error) {
	var n int64
	err := x.update(ctx, func(t *tx) error {
		n = 0 // fn runs again if its batch fails (batch.go)
		for _, q := range ds {
			d := q.Delivery
			state := "pending"
			if q.Dead {
				state = "dead"
			}
			res, err := t.exec(`INSERT INTO outbox (event_id, sink, type, key, blob, prev_blob, sha256, size,
				content_type, doc_id, media_id, request_id, occurred, attempts, next_at, state, last_error, reason)
				SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18
				WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE sink = ?2 AND key = ?4 AND event_id = ?1)`,
				d.EventID, d.Sink, d.Type, d.Key, d.Blob, d.PrevBlob, d.SHA256, d.Size, d.ContentType, d.DocID,
				d.MediaID, d.RequestID, d.Occurred.UnixNano(), d.Attempts, q.Next.UnixNano(), state, q.Error, d.Reason)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		t.enqueued = n > 0
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: import: %w", err)
	}
	return n, nil
}
