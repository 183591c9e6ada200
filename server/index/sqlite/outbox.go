package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/attachd/attachd/server/index"
)

func newEventID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Enqueue implements index.Tx.
func (t *tx) Enqueue(d index.Delivery) error {
	if d.EventID == "" {
		d.EventID = newEventID()
	}
	now := d.Occurred.UnixNano()
	if d.Type == index.ChangeUpdated {
		var prev string
		err := t.tx.QueryRowContext(t.ctx, `SELECT type FROM outbox WHERE sink = ? AND key = ? AND state = 'pending'
			AND lease_until < ? AND type != ? ORDER BY id DESC LIMIT 1`, d.Sink, d.Key, now, index.ChangeDeleted).Scan(&prev)
		if err == nil {
			if prev == index.ChangeCreated {
				d.Type = index.ChangeCreated
			}
			if _, err := t.exec(`DELETE FROM outbox WHERE sink = ? AND key = ? AND state = 'pending'
				AND lease_until < ? AND type != ?`, d.Sink, d.Key, now, index.ChangeDeleted); err != nil {
				return fmt.Errorf("outbox: coalesce: %w", err)
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	if _, err := t.exec(`INSERT INTO outbox (event_id, sink, type, key, blob, prev_blob, sha256, size,
		content_type, doc_id, media_id, request_id, reason, occurred, next_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		d.EventID, d.Sink, d.Type, d.Key, d.Blob, d.PrevBlob, d.SHA256, d.Size, d.ContentType, d.DocID, d.MediaID,
		d.RequestID, d.Reason, now, now); err != nil {
		return fmt.Errorf("outbox: enqueue: %w", err)
	}
	t.enqueued = true
	return nil
}

// Claim implements index.Index.
func (x *DB) Claim(ctx context.Context, sink string, limit int, lease time.Duration, now time.Time) ([]index.Delivery, error) {
	var out []index.Delivery
	err := x.update(ctx, func(t *tx) error {
		out = out[:0] // fn runs again if its batch fails (batch.go)
		rows, err := t.tx.QueryContext(t.ctx, `SELECT id, event_id, sink, type, key, blob, prev_blob, sha256, size, content_type,
			doc_id, media_id, request_id, reason, occurred, attempts FROM outbox
			WHERE sink = ? AND state = 'pending' AND next_at <= ? AND lease_until <= ? ORDER BY next_at, id LIMIT ?`,
			sink, now.UnixNano(), now.UnixNano(), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d index.Delivery
			var occurred int64
			if err := rows.Scan(&d.ID, &d.EventID, &d.Sink, &d.Type, &d.Key, &d.Blob, &d.PrevBlob, &d.SHA256, &d.Size,
				&d.ContentType, &d.DocID, &d.MediaID, &d.RequestID, &d.Reason, &occurred, &d.Attempts); err != nil {
				rows.Close()
				return err
			}
			d.Occurred = time.Unix(0, occurred)
			d.Attempts++
			out = append(out, d)
		}
		rows.Close()
		for _, d := range out {
			if _, err := t.exec(`UPDATE outbox SET attempts = ?, lease_until = ? WHERE id = ?`,
				d.Attempts, now.Add(lease).UnixNano(), d.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	return out, nil
}

// Finish implements index.Index.
func (x *DB) Finish(ctx context.Context, outs []index.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	err := x.update(ctx, func(t *tx) error {
		for _, o := range outs {
			var err error
			switch {
			case o.Done:
				_, err = t.exec(`DELETE FROM outbox WHERE id = ?`, o.ID)
			case o.Dead:
				_, err = t.exec(`UPDATE outbox SET state = 'dead', lease_until = 0, last_error = ? WHERE id = ?`, o.Error, o.ID)
			default:
				_, err = t.exec(`UPDATE outbox SET next_at = ?, lease_until = 0, last_error = ? WHERE id = ?`,
					o.Next.UnixNano(), o.Error, o.ID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: finish: %w", err)
	}
	return nil
}

// Requeue implements index.Index.
func (x *DB) Requeue(ctx context.Context, sink, eventID string, now time.Time) (int64, error) {
	var n int64
	err := x.update(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, lease_until = 0
			WHERE state = 'dead' AND (? = '' OR sink = ?) AND (? = '' OR event_id = ?)`,
			now.UnixNano(), sink, sink, eventID, eventID)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		t.enqueued = n > 0
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: requeue: %w", err)
	}
	return n, nil
}

// Release implements index.Index.
func (x *DB) Release(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := x.update(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE outbox SET lease_until = 0 WHERE state = 'pending' AND sink = ? AND lease_until > 0`, sink)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		t.enqueued = n > 0
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: release: %w", err)
	}
	return n, nil
}

// OutboxStats implements index.Index.
func (x *DB) OutboxStats(ctx context.Context) ([]index.SinkStats, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT sink,
		SUM(state = 'pending'), MIN(CASE WHEN state = 'pending' THEN occurred END), SUM(state = 'dead')
		FROM outbox GROUP BY sink ORDER BY sink`)
	if err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	defer rows.Close()
	var out []index.SinkStats
	for rows.Next() {
		var st index.SinkStats
		var oldest sql.NullInt64
		if err := rows.Scan(&st.Sink, &st.Pending, &oldest, &st.Dead); err != nil {
			return nil, fmt.Errorf("outbox: stats: %w", err)
		}
		if oldest.Valid {
			st.OldestPending = time.Unix(0, oldest.Int64)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
