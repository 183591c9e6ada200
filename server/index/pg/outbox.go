package pg

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/jackc/pgx/v5"
)

func newEventID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const outboxInsert = `INSERT INTO attachd_outbox (event_id, sink, type, key, blob, prev_blob, sha256, size,
	content_type, doc_id, media_id, request_id, reason, occurred, next_at)`

// Enqueue implements index.Tx. An "updated" delivery takes the place of the
// pending ones it coalesces with in the same statement.
func (t *tx) Enqueue(d index.Delivery) error {
	if d.EventID == "" {
		d.EventID = newEventID()
	}
	args := []any{d.EventID, d.Sink, d.Type, d.Key, d.Blob, d.PrevBlob, d.SHA256, d.Size,
		clean(d.ContentType), clean(d.DocID), clean(d.MediaID), clean(d.RequestID), d.Occurred.UnixNano(), clean(d.Reason)}
	q := outboxInsert + ` VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$14,$13,$13)`
	if d.Type == index.ChangeUpdated {
		// The pending deliveries of the sink and key that no dispatcher
		// holds go, unless they say "deleted"; the newest one's "created"
		// carries over.
		q = `WITH prev AS (
				DELETE FROM attachd_outbox WHERE sink = $2 AND key = $4 AND state = 'pending'
					AND lease_until < $13 AND type <> $15
				RETURNING id, type)
			` + outboxInsert + ` VALUES ($1, $2,
				CASE WHEN (SELECT type FROM prev ORDER BY id DESC LIMIT 1) = $16 THEN $16 ELSE $3 END,
				$4,$5,$6,$7,$8,$9,$10,$11,$12,$14,$13,$13)`
		args = append(args, index.ChangeDeleted, index.ChangeCreated)
	}
	// Nothing reads its result: it goes out with the next statement or
	// with COMMIT, and a failure fails the transaction there.
	t.later(q, args...)
	t.enqueued = true
	return nil
}

// Claim implements index.Index, in one statement outside the writers' turn:
// FOR UPDATE SKIP LOCKED passes over the deliveries another node is
// claiming, and the lease keeps them from the others once it commits. Claim
// leaves the version alone: it changes nothing a listing shows, and taking
// the version row would queue every claim behind the writers.
func (x *DB) Claim(ctx context.Context, sink string, limit int, lease time.Duration, now time.Time) ([]index.Delivery, error) {
	var lim any = limit
	if limit < 0 {
		lim = nil // no limit, as SQLite's LIMIT -1
	}
	type claimed struct {
		d      index.Delivery
		nextAt int64
	}
	var out []claimed
	// As in package sqlite, a claim under way completes: what it leased
	// goes to the caller, not to the lease's end.
	err := x.readPage(context.WithoutCancel(ctx), func(rows pgx.Rows) error {
		var c claimed
		var occurred int64
		d := &c.d
		if err := rows.Scan(&d.ID, &d.EventID, &d.Sink, &d.Type, &d.Key, &d.Blob, &d.PrevBlob, &d.SHA256, &d.Size,
			&d.ContentType, &d.DocID, &d.MediaID, &d.RequestID, &d.Reason, &occurred, &d.Attempts, &c.nextAt); err != nil {
			return err
		}
		d.Occurred = time.Unix(0, occurred)
		out = append(out, c)
		return nil
	}, `WITH c AS (
			SELECT id FROM attachd_outbox
			WHERE sink = $1 AND state = 'pending' AND next_at <= $2 AND lease_until <= $2
			ORDER BY next_at, id LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE attachd_outbox o SET attempts = o.attempts + 1, lease_until = $4 FROM c WHERE o.id = c.id
		RETURNING o.id, o.event_id, o.sink, o.type, o.key, o.blob, o.prev_blob, o.sha256, o.size, o.content_type,
			o.doc_id, o.media_id, o.request_id, o.reason, o.occurred, o.attempts, o.next_at`,
		sink, now.UnixNano(), lim, now.Add(lease).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	// RETURNING keeps no order: restore the claim's.
	slices.SortFunc(out, func(a, b claimed) int {
		if a.nextAt != b.nextAt {
			return cmp.Compare(a.nextAt, b.nextAt)
		}
		return cmp.Compare(a.d.ID, b.d.ID)
	})
	ds := make([]index.Delivery, len(out))
	for i, c := range out {
		ds[i] = c.d
	}
	return ds, nil
}

// Finish implements index.Index, in one statement.
func (x *DB) Finish(ctx context.Context, outs []index.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	n := len(outs)
	ids, done, dead, next, errs := make([]int64, n), make([]bool, n), make([]bool, n), make([]int64, n), make([]string, n)
	for i, o := range outs {
		ids[i], done[i], dead[i], errs[i] = o.ID, o.Done, o.Dead, clean(o.Error)
		if !o.Done && !o.Dead {
			next[i] = o.Next.UnixNano()
		}
	}
	err := x.update(ctx, nil, func(t *tx) error {
		_, err := t.exec(`WITH
				o AS (SELECT * FROM unnest($1::bigint[], $2::boolean[], $3::boolean[], $4::bigint[], $5::text[])
					AS o (id, done, dead, next_at, error)),
				gone AS (DELETE FROM attachd_outbox USING o WHERE attachd_outbox.id = o.id AND o.done)
			UPDATE attachd_outbox SET
				state = CASE WHEN o.dead THEN 'dead' ELSE attachd_outbox.state END,
				next_at = CASE WHEN o.dead THEN attachd_outbox.next_at ELSE o.next_at END,
				lease_until = 0, last_error = o.error
			FROM o WHERE attachd_outbox.id = o.id AND NOT o.done`, ids, done, dead, next, errs)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: finish: %w", err)
	}
	return nil
}

// Requeue implements index.Index.
func (x *DB) Requeue(ctx context.Context, sink, eventID string, now time.Time) (int64, error) {
	var n int64
	err := x.update(ctx, nil, func(t *tx) error {
		tag, err := t.exec(`UPDATE attachd_outbox SET state = 'pending', attempts = 0, next_at = $1, lease_until = 0
			WHERE state = 'dead' AND ($2 = '' OR sink = $2) AND ($3 = '' OR event_id = $3)`,
			now.UnixNano(), sink, eventID)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
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
	err := x.update(ctx, nil, func(t *tx) error {
		tag, err := t.exec(`UPDATE attachd_outbox SET lease_until = 0 WHERE state = 'pending' AND sink = $1 AND lease_until > 0`, sink)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
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
	var out []index.SinkStats
	err := x.readPage(ctx, func(rows pgx.Rows) error {
		var st index.SinkStats
		var oldest *int64
		if err := rows.Scan(&st.Sink, &st.Pending, &oldest, &st.Dead); err != nil {
			return err
		}
		if oldest != nil {
			st.OldestPending = time.Unix(0, *oldest)
		}
		out = append(out, st)
		return nil
	}, `SELECT sink, count(*) FILTER (WHERE state = 'pending'), min(occurred) FILTER (WHERE state = 'pending'),
		count(*) FILTER (WHERE state = 'dead')
		FROM attachd_outbox GROUP BY sink ORDER BY sink`)
	if err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	return out, nil
}
