package sqlite

import "database/sql"

// The tables of objects and folders are a cache of the objects tree;
// dav_locks and outbox hold what only the index knows.
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
` +
	// Copies share blobs, so replacing or deleting an object asks whether
	// any other object still names its blob (BlobInUse). Without this
	// index that question read the whole table: every overwrite cost a
	// scan of the store, and deleting a folder of n objects n scans.
	`
CREATE INDEX IF NOT EXISTS objects_blob ON objects(blob);
` +
	// The usage of the folders with a quota (DB.TrackUsage). Its triggers
	// (usageTriggers) exist while it has rows.
	`
CREATE TABLE IF NOT EXISTS folder_usage (
	prefix  TEXT PRIMARY KEY,
	bytes   INTEGER NOT NULL,
	objects INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dirs (
	key     TEXT PRIMARY KEY,
	parent  TEXT NOT NULL,
	props   TEXT NOT NULL,
	created INTEGER NOT NULL,
	mtime   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dirs_parent ON dirs(parent);
` +
	// WebDAV locks are state of the protocol, not of any object, and must
	// survive a restart (Windows and davfs2 hold them across reconnects).
	`
CREATE TABLE IF NOT EXISTS dav_locks (
	token   TEXT PRIMARY KEY,
	root    TEXT NOT NULL,
	depth0  INTEGER NOT NULL,
	shared  INTEGER NOT NULL,
	owner   TEXT NOT NULL,
	user    TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dav_locks_root ON dav_locks(root);
` +
	// The outbox holds one delivery per change and sink. Its rows are
	// written in the same transaction as the change (docs/design.md, invariant 6).
	`
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
	reason       TEXT NOT NULL DEFAULT '',
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

// usageTriggers keep folder_usage in the transaction of every change to
// objects, whatever process makes it: a quota check reads one row, not
// every object below the folder. The WHERE clauses are index.Below's
// ranges. They exist only while a folder is kept, for they cost every
// change: with no row to update, 3 % of a 100 KiB PUT's CPU on tmpfs, and
// ~0.14 µs more for each folder kept (each change reads every row).
var usageTriggers = []struct{ name, sql string }{
	{"folder_usage_insert", `AFTER INSERT ON objects BEGIN
	UPDATE folder_usage SET bytes = bytes + NEW.size, objects = objects + 1
	WHERE prefix = '' AND NEW.key < char(1114111) OR NEW.key > prefix || '/' AND NEW.key < prefix || '0';
END`},
	{"folder_usage_delete", `AFTER DELETE ON objects BEGIN
	UPDATE folder_usage SET bytes = bytes - OLD.size, objects = objects - 1
	WHERE prefix = '' AND OLD.key < char(1114111) OR OLD.key > prefix || '/' AND OLD.key < prefix || '0';
END`},
	{"folder_usage_update", `AFTER UPDATE OF key, size ON objects BEGIN
	UPDATE folder_usage SET bytes = bytes - OLD.size, objects = objects - 1
	WHERE prefix = '' AND OLD.key < char(1114111) OR OLD.key > prefix || '/' AND OLD.key < prefix || '0';
	UPDATE folder_usage SET bytes = bytes + NEW.size, objects = objects + 1
	WHERE prefix = '' AND NEW.key < char(1114111) OR NEW.key > prefix || '/' AND NEW.key < prefix || '0';
END`},
}

// columnsAdded are columns added to a table after it shipped: an index
// made before them gets them at open, empty.
var columnsAdded = []struct{ table, column, def string }{
	{"outbox", "reason", "TEXT NOT NULL DEFAULT ''"},
	// What the voicemail browser searches (index.Recording), derived from
	// each object's metadata when it is put; rec_v is the version of the
	// rules it was derived with (0: not yet, backfilled at open).
	{"objects", "rec_v", "INTEGER NOT NULL DEFAULT 0"},
	{"objects", "rec_at", "INTEGER NOT NULL DEFAULT 0"},
	{"objects", "rec_kind", "TEXT NOT NULL DEFAULT ''"},
	{"objects", "rec_account", "TEXT NOT NULL DEFAULT ''"},
	{"objects", "rec_mailbox", "TEXT NOT NULL DEFAULT ''"},
	{"objects", "rec_caller_name", "TEXT NOT NULL DEFAULT ''"},
	{"objects", "rec_caller_number", "TEXT NOT NULL DEFAULT ''"},
	{"objects", "rec_text", "TEXT NOT NULL DEFAULT ''"},
	{"objects", "rec_duration", "INTEGER NOT NULL DEFAULT 0"},
}

// indexesAdded are made once columnsAdded are there. They cover what a
// search filters on, so that a search that matches few rows scans the
// index alone and reads only the rows it returns from the table.
const indexesAdded = `
CREATE INDEX IF NOT EXISTS objects_rec ON objects(rec_at, key, rec_text, rec_account, rec_mailbox, rec_kind, content_type);
CREATE INDEX IF NOT EXISTS objects_rec_group ON objects(rec_account, rec_mailbox, key, rec_at);
`

func createSchema(db *sql.DB) error {
	if _, err := db.Exec(schema); err != nil {
		return err
	}
	for _, c := range columnsAdded {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.column + ` ` + c.def); err != nil {
				return err
			}
		}
	}
	if _, err := db.Exec(indexesAdded); err != nil {
		return err
	}
	return backfillRecordings(db)
}
