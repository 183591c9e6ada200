package pg

import (
	"context"
	"testing"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/indextest"
	"github.com/jackc/pgx/v5"
)

// TestMigrationDerivesRecordings: an index made before migration 3 gets
// its objects' recordings derived when a newer attachd opens it.
func TestMigrationDerivesRecordings(t *testing.T) {
	u := freshSchema(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := c.Exec(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	meta := `{"document":{"caller_id_name":"Old Caller","caller_id_number":"+15550001","mailbox":"2001","timestamp":63871000000}}`
	for _, q := range []string{
		`CREATE TABLE attachd_schema (version integer NOT NULL)`,
		`INSERT INTO attachd_schema VALUES (2)`,
		`INSERT INTO attachd_objects (key, parent, blob, size, sha256, content_type, doc_id, media_id, meta, props, created, updated, mtime)
			VALUES ('a/4e3005310add6229778caf6babfe7cfb/vm.mp3', 'a/4e3005310add6229778caf6babfe7cfb', 'b', 3, 's', 'audio/mpeg', '', '', '` + meta + `', '{}', 1, 1, 1)`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(ctx)
	x := mustOpen(t, u)
	defer x.Close()
	hits, err := x.Search(ctx, index.Query{Caller: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 {
		t.Fatalf("search after migration: %d hits, want 1", len(hits))
	}
	h := hits[0]
	if h.Mailbox != "2001" || h.CallerNumber != "+15550001" || h.Account != "4e3005310add6229778caf6babfe7cfb" ||
		h.At.Unix() != 63871000000-62167219200 || h.Kind != "mailbox_message" {
		t.Errorf("derived: %+v", h.Recording)
	}
}

// BenchmarkSearch: the browser's queries on 100 000 objects in PostgreSQL
// (indextest.BenchSearch; docs/ui.md has the figures).
func BenchmarkSearch(b *testing.B) {
	x := mustOpen(b, freshSchema(b))
	defer x.Close()
	indextest.BenchSearch(b, x)
}
