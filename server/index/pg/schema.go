package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrations are the schema's versions: migrations[i] takes a database from
// version i to i+1. Append; never edit one that has shipped.
//
// The tables are package sqlite's, prefixed: the database may be shared.
// Keys collate as "C", so that they order and compare as byte strings, as
// SQLite's do; times are unix nanoseconds, as there (timestamptz keeps
// microseconds only). Texts stay text, not jsonb, which would rewrite them.
var migrations = []string{
	// 1
	`
CREATE TABLE attachd_objects (
	key          text COLLATE "C" PRIMARY KEY,
	parent       text COLLATE "C" NOT NULL,
	blob         text NOT NULL,
	size         bigint NOT NULL,
	sha256       text NOT NULL,
	content_type text NOT NULL,
	doc_id       text NOT NULL,
	media_id     text NOT NULL,
	meta         text NOT NULL,
	props        text NOT NULL,
	created      bigint NOT NULL,
	updated      bigint NOT NULL,
	mtime        bigint NOT NULL
);
CREATE INDEX attachd_objects_parent ON attachd_objects (parent, key);
CREATE INDEX attachd_objects_doc ON attachd_objects (doc_id) WHERE doc_id <> '';
CREATE INDEX attachd_objects_media ON attachd_objects (media_id) WHERE media_id <> '';
CREATE INDEX attachd_objects_blob ON attachd_objects (blob);

CREATE TABLE attachd_dirs (
	key     text COLLATE "C" PRIMARY KEY,
	parent  text COLLATE "C" NOT NULL,
	props   text NOT NULL,
	created bigint NOT NULL,
	mtime   bigint NOT NULL
);
CREATE INDEX attachd_dirs_parent ON attachd_dirs (parent, key);

CREATE TABLE attachd_locks (
	token   text COLLATE "C" PRIMARY KEY,
	root    text COLLATE "C" NOT NULL,
	depth0  boolean NOT NULL,
	shared  boolean NOT NULL,
	owner   text NOT NULL,
	"user"  text NOT NULL,
	created bigint NOT NULL,
	expires bigint NOT NULL
);
CREATE INDEX attachd_locks_root ON attachd_locks (root);

CREATE TABLE attachd_outbox (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_id     text NOT NULL,
	sink         text COLLATE "C" NOT NULL,
	type         text NOT NULL,
	key          text COLLATE "C" NOT NULL,
	blob         text NOT NULL,
	prev_blob    text NOT NULL DEFAULT '',
	sha256       text NOT NULL,
	size         bigint NOT NULL,
	content_type text NOT NULL,
	doc_id       text NOT NULL,
	media_id     text NOT NULL,
	request_id   text NOT NULL,
	occurred     bigint NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	next_at      bigint NOT NULL,
	lease_until  bigint NOT NULL DEFAULT 0,
	state        text NOT NULL DEFAULT 'pending',
	last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX attachd_outbox_due ON attachd_outbox (sink, state, next_at);
CREATE INDEX attachd_outbox_key ON attachd_outbox (sink, key, state);

-- Bumped by every write transaction, which holds its row lock until it
-- ends: Watch reads it, and writers queue on it.
CREATE TABLE attachd_version (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	version bigint NOT NULL
);
INSERT INTO attachd_version (version) VALUES (0);
`,
	// 2: why a change was made when no client asked for it ("retention").
	`
ALTER TABLE attachd_outbox ADD COLUMN reason text NOT NULL DEFAULT '';
`,
	// 3: what the voicemail browser searches (index.Recording), derived
	// from each object's metadata when it is put; rec_v is the version of
	// the rules it was derived with (0: not yet, backfilled after opening).
	`
ALTER TABLE attachd_objects
	ADD COLUMN rec_v integer NOT NULL DEFAULT 0,
	ADD COLUMN rec_at bigint NOT NULL DEFAULT 0,
	ADD COLUMN rec_kind text NOT NULL DEFAULT '',
	ADD COLUMN rec_account text COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN rec_mailbox text COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN rec_caller_name text NOT NULL DEFAULT '',
	ADD COLUMN rec_caller_number text NOT NULL DEFAULT '',
	ADD COLUMN rec_text text NOT NULL DEFAULT '',
	ADD COLUMN rec_duration bigint NOT NULL DEFAULT 0;
CREATE INDEX attachd_objects_rec ON attachd_objects (rec_at, key)
	INCLUDE (rec_text, rec_account, rec_mailbox, rec_kind, content_type);
CREATE INDEX attachd_objects_rec_group ON attachd_objects (rec_account, rec_mailbox, key) INCLUDE (rec_at);
`,
	// 4: the usage of the folders with a quota (DB.TrackUsage), kept by
	// usageTriggers in the transaction of every change to attachd_objects.
	// The function runs once per statement, not per row: PostgreSQL writes
	// a new version of a row at each update, and a transaction that updated
	// a folder's row once per changed object would walk the versions it
	// made, its time growing with the square of their number. A statement's
	// changed rows (its transition tables) are added up per folder and each
	// folder's row is updated once. Without jit = off the sum over a large
	// statement's rows is compiled first (0.7 s, not 30 ms, for a DELETE of
	// 40 000 objects). The function finds its tables in the schema it was
	// made in, whatever the search_path of the session that fires it. The
	// ranges are index.Below's; '' is the whole store.
	`
CREATE TABLE attachd_folder_usage (
	prefix  text COLLATE "C" PRIMARY KEY,
	bytes   bigint NOT NULL,
	objects bigint NOT NULL
);
CREATE FUNCTION attachd_folder_usage_change() RETURNS trigger LANGUAGE plpgsql
	SET jit = off SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE attachd_folder_usage u SET bytes = u.bytes + d.bytes, objects = u.objects + d.objects
		FROM (SELECT f.prefix, SUM(c.size) AS bytes, COUNT(*) AS objects
			FROM attachd_folder_usage f JOIN new_rows c
			ON f.prefix = '' OR c.key > f.prefix || '/' AND c.key < f.prefix || '0'
			GROUP BY f.prefix) d
		WHERE u.prefix = d.prefix;
	ELSIF TG_OP = 'DELETE' THEN
		UPDATE attachd_folder_usage u SET bytes = u.bytes - d.bytes, objects = u.objects - d.objects
		FROM (SELECT f.prefix, SUM(c.size) AS bytes, COUNT(*) AS objects
			FROM attachd_folder_usage f JOIN old_rows c
			ON f.prefix = '' OR c.key > f.prefix || '/' AND c.key < f.prefix || '0'
			GROUP BY f.prefix) d
		WHERE u.prefix = d.prefix;
	ELSE
		UPDATE attachd_folder_usage u SET bytes = u.bytes + d.bytes, objects = u.objects + d.objects
		FROM (SELECT f.prefix, SUM(c.size) AS bytes, SUM(c.n) AS objects
			FROM attachd_folder_usage f
			JOIN (SELECT key, size, 1 AS n FROM new_rows UNION ALL SELECT key, -size, -1 FROM old_rows) c
			ON f.prefix = '' OR c.key > f.prefix || '/' AND c.key < f.prefix || '0'
			GROUP BY f.prefix) d
		WHERE u.prefix = d.prefix AND (d.bytes <> 0 OR d.objects <> 0);
	END IF;
	RETURN NULL;
END
$$;
`,
}

// usageTriggers call attachd_folder_usage_change (migration 4). They exist
// only while a folder's usage is kept (DB.TrackUsage), for they cost every
// statement that changes attachd_objects: a one-row insert took 56 µs of
// PostgreSQL's time without them and 117–132 µs with one folder kept
// (bench/results/2026-12-03-cluster-quota.md).
var usageTriggers = []struct{ name, sql string }{
	{"attachd_folder_usage_insert", `CREATE TRIGGER attachd_folder_usage_insert AFTER INSERT ON attachd_objects
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION attachd_folder_usage_change()`},
	{"attachd_folder_usage_delete", `CREATE TRIGGER attachd_folder_usage_delete AFTER DELETE ON attachd_objects
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION attachd_folder_usage_change()`},
	{"attachd_folder_usage_update", `CREATE TRIGGER attachd_folder_usage_update AFTER UPDATE ON attachd_objects
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION attachd_folder_usage_change()`},
}

// schemaLockKey is the advisory lock the migrations are applied under: the
// nodes that start at once wait for the first, and find its work done.
const schemaLockKey int64 = 0x61747461636864_01 // "attachd", 1; locks.go has 2

// migrate brings the database's schema up to the newest version this
// binary knows, in one transaction.
func (x *DB) migrate(ctx context.Context) error {
	err := x.migrateTx(ctx)
	var ue *unavailableError
	var ve *versionError
	if err == nil || errors.As(err, &ue) || errors.As(err, &ve) {
		return err
	}
	// The server refused the connection: a wrong password, a missing database.
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if errors.As(err, &ce) && errors.As(err, &pe) {
		return &messageError{fmt.Sprintf("postgres index at %s: %s (SQLSTATE %s)", x.addr, pe.Message, pe.Code), err}
	}
	return &messageError{fmt.Sprintf("postgres index at %s: schema: %s", x.addr, scrub(err.Error(), x.pw)), err}
}

// messageError is err, told in fewer words.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// versionError is a database whose schema is newer than this binary.
type versionError struct{ have, know int }

func (e *versionError) Error() string {
	return fmt.Sprintf("postgres index schema is version %d; this attachd knows up to %d: upgrade attachd", e.have, e.know)
}

func (x *DB) migrateTx(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, schemaTimeout)
	defer cancel()
	conn, err := x.pool.Acquire(ctx)
	if err != nil {
		return x.fail(nil, err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return x.fail(nil, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockKey); err != nil {
		return x.fail(nil, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS attachd_schema (version integer NOT NULL)`); err != nil {
		return x.fail(nil, err)
	}
	var have int
	err = tx.QueryRow(ctx, `SELECT version FROM attachd_schema`).Scan(&have)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO attachd_schema (version) VALUES (0)`)
	}
	if err != nil {
		return x.fail(nil, err)
	}
	if have > len(migrations) {
		return &versionError{have, len(migrations)}
	}
	if have == len(migrations) {
		return x.fail(nil, tx.Commit(ctx))
	}
	for i := have; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, x.fail(nil, err))
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE attachd_schema SET version = $1`, len(migrations)); err != nil {
		return x.fail(nil, err)
	}
	return x.fail(nil, tx.Commit(ctx))
}
