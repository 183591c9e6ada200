package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
)

// The outbox holds one delivery per change and subscriber (a hook, or the
// replication to a remote backend). Rows are written in the same index
// transaction as the change itself (design invariant 6), so a change that is
// visible has its deliveries queued, whatever happens next.
const outboxSchema = `
CREATE TABLE IF NOT EXISTS outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id     TEXT NOT NULL,
	sink         TEXT NOT NULL,
	type         TEXT NOT NULL,
	key          TEXT NOT NULL,
	blob         TEXT NOT NULL,
	prev_blob    TEXT NOT NULL DEFAULT '',
	sha256       TEXT NOT NULL,
	size         INTEGER NOT NULL,
	content_type TEXT NOT NULL,
	doc_id       TEXT NOT NULL,
	media_id     TEXT NOT NULL,
	request_id   TEXT NOT NULL,
	occurred     INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL,
	lease_until  INTEGER NOT NULL DEFAULT 0,
	state        TEXT NOT NULL DEFAULT 'pending',
	last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(sink, state, next_at);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox(sink, key, state);
`

func init() { schemas = append(schemas, outboxSchema) }

// Change types, as hooks name them.
const (
	ChangeCreated = "attachment.created"
	ChangeUpdated = "attachment.updated"
	ChangeDeleted = "attachment.deleted"
)

// Delivery is one queued delivery of a change to a sink.
type Delivery struct {
	ID          int64
	EventID     string // the same for every attempt: the receiver's idempotency key
	Sink        string
	Type        string
	Key         string
	Blob        string
	PrevBlob    string // the blob of the version this one replaced, if any
	SHA256      string
	Size        int64
	ContentType string
	DocID       string
	MediaID     string
	RequestID   string
	Occurred    time.Time
	Attempts    int // including the one being made
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the request making a change,
// which the change's deliveries carry on to their hooks.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newEventID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// enqueue writes one delivery per sink for a change of o, in tx. A pending
// delivery of an earlier version of the same key that no dispatcher holds is
// replaced: quick successive versions coalesce into one event, which keeps
// the type "created" if the replaced one had it.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, typ string, o Object, prevBlob ...string) error {
	return s.enqueueTo(ctx, tx, s.sinks, typ, o, prevBlob...)
}

func (s *Store) enqueueTo(ctx context.Context, tx *sql.Tx, sinks []string, typ string, o Object, prevBlob ...string) error {
	if len(sinks) == 0 {
		return nil
	}
	prev := ""
	if len(prevBlob) > 0 {
		prev = prevBlob[0]
	}
	now := time.Now().UnixNano()
	for _, sink := range sinks {
		t := typ
		if typ == ChangeUpdated {
			var prev string
			err := tx.QueryRowContext(ctx, `SELECT type FROM outbox WHERE sink = ? AND key = ? AND state = 'pending'
				AND lease_until < ? AND type != ? ORDER BY id DESC LIMIT 1`, sink, o.Key, now, ChangeDeleted).Scan(&prev)
			if err == nil {
				if prev == ChangeCreated {
					t = ChangeCreated
				}
				if _, err := s.idx.exec(ctx, tx, `DELETE FROM outbox WHERE sink = ? AND key = ? AND state = 'pending'
					AND lease_until < ? AND type != ?`, sink, o.Key, now, ChangeDeleted); err != nil {
					return fmt.Errorf("outbox: coalesce: %w", err)
				}
			} else if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("outbox: %w", err)
			}
		}
		if _, err := s.idx.exec(ctx, tx, `INSERT INTO outbox (event_id, sink, type, key, blob, prev_blob, sha256, size,
			content_type, doc_id, media_id, request_id, occurred, next_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			newEventID(), sink, t, o.Key, o.Blob, prev, o.SHA256, o.Size, o.ContentType, o.DocID, o.MediaID,
			RequestID(ctx), now, now); err != nil {
			return fmt.Errorf("outbox: enqueue: %w", err)
		}
	}
	s.notify()
	return nil
}

// enqueueTree queues a change of every object below the folder dir (lo..hi).
func (s *Store) enqueueTree(ctx context.Context, tx *sql.Tx, typ, lo, hi string) error {
	if len(s.sinks) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+objectCols+` FROM objects WHERE key > ? AND key < ?`, lo, hi)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	var objs []Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			rows.Close()
			return err
		}
		objs = append(objs, o)
	}
	rows.Close()
	for _, o := range objs {
		if err := s.enqueue(ctx, tx, typ, o); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Changed returns a channel that receives when deliveries were queued.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// ClaimDeliveries leases up to limit due deliveries of sink for lease, and
// counts the attempt. A dispatcher that dies holding them lets the lease run
// out, and they are claimed again: delivery is at least once.
func (s *Store) ClaimDeliveries(ctx context.Context, sink string, limit int, lease time.Duration) ([]Delivery, error) {
	var out []Delivery
	now := time.Now()
	err := s.idx.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, event_id, sink, type, key, blob, prev_blob, sha256, size, content_type,
			doc_id, media_id, request_id, occurred, attempts FROM outbox
			WHERE sink = ? AND state = 'pending' AND next_at <= ? AND lease_until <= ? ORDER BY next_at, id LIMIT ?`,
			sink, now.UnixNano(), now.UnixNano(), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d Delivery
			var occurred int64
			if err := rows.Scan(&d.ID, &d.EventID, &d.Sink, &d.Type, &d.Key, &d.Blob, &d.PrevBlob, &d.SHA256, &d.Size,
				&d.ContentType, &d.DocID, &d.MediaID, &d.RequestID, &occurred, &d.Attempts); err != nil {
				rows.Close()
				return err
			}
			d.Occurred = time.Unix(0, occurred)
			d.Attempts++
			out = append(out, d)
		}
		rows.Close()
		for _, d := range out {
			if _, err := s.idx.exec(ctx, tx, `UPDATE outbox SET attempts = ?, lease_until = ? WHERE id = ?`,
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

// Outcome is what became of one delivery attempt.
type Outcome struct {
	ID    int64
	Done  bool      // delivered: remove it
	Dead  bool      // given up: keep it as a dead letter
	Next  time.Time // otherwise: try again then
	Error string    // why it was not delivered
}

// FinishDeliveries records the outcomes of attempts, in one transaction.
func (s *Store) FinishDeliveries(ctx context.Context, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	err := s.idx.tx(ctx, func(tx *sql.Tx) error {
		for _, o := range outs {
			var err error
			switch {
			case o.Done:
				_, err = s.idx.exec(ctx, tx, `DELETE FROM outbox WHERE id = ?`, o.ID)
			case o.Dead:
				_, err = s.idx.exec(ctx, tx, `UPDATE outbox SET state = 'dead', lease_until = 0, last_error = ? WHERE id = ?`, o.Error, o.ID)
			default:
				_, err = s.idx.exec(ctx, tx, `UPDATE outbox SET next_at = ?, lease_until = 0, last_error = ? WHERE id = ?`,
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

// Outbox reads and repairs the delivery queue of a data directory from
// outside the server (attachd hooks status, attachd hooks retry). It opens
// only the index, which SQLite lets two processes share.
type Outbox struct{ idx *index }

// OpenOutbox opens the outbox of the data directory dir.
func OpenOutbox(dir string) (*Outbox, error) {
	path := filepath.Join(dir, "index.db")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s (has attachd run on this data directory?): %w", path, err)
	}
	if _, err := db.Exec(outboxSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox in %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return &Outbox{idx: &index{w: db, r: db}}, nil
}

// Close closes the outbox.
func (o *Outbox) Close() error { return o.idx.w.Close() }

// SinkStats is the state of one sink's queue.
type SinkStats struct {
	Sink          string
	Pending       int
	OldestPending time.Time // zero if none
	Dead          int
}

// Stats returns the queue of every sink that has deliveries.
func (o *Outbox) Stats(ctx context.Context) ([]SinkStats, error) { return o.idx.outboxStats(ctx) }

// OutboxStats returns the queue of every sink that has deliveries.
func (s *Store) OutboxStats(ctx context.Context) ([]SinkStats, error) { return s.idx.outboxStats(ctx) }

func (x *index) outboxStats(ctx context.Context) ([]SinkStats, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT sink,
		SUM(state = 'pending'), MIN(CASE WHEN state = 'pending' THEN occurred END), SUM(state = 'dead')
		FROM outbox GROUP BY sink ORDER BY sink`)
	if err != nil {
		return nil, fmt.Errorf("outbox: stats: %w", err)
	}
	defer rows.Close()
	var out []SinkStats
	for rows.Next() {
		var st SinkStats
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

// Requeue makes dead letters pending again, with their attempts reset: those
// of sink ("" for every sink) and, if eventID is not "", only that event.
func (o *Outbox) Requeue(ctx context.Context, sink, eventID string) (int64, error) {
	res, err := o.idx.w.ExecContext(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, lease_until = 0
		WHERE state = 'dead' AND (? = '' OR sink = ?) AND (? = '' OR event_id = ?)`,
		time.Now().UnixNano(), sink, sink, eventID, eventID)
	if err != nil {
		return 0, fmt.Errorf("outbox: requeue: %w", err)
	}
	return res.RowsAffected()
}
