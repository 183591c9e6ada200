package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/indextest"
)

// TestOpenDerivesRecordings: an index made before the rec_ columns gets
// them at open, filled from its objects' metadata.
func TestOpenDerivesRecordings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	meta := `{"document":{"caller_id_name":"Old Caller","caller_id_number":"+15550001","mailbox":"2001","timestamp":63871000000}}`
	for _, q := range []string{schema,
		`INSERT INTO objects (key, parent, blob, size, sha256, content_type, doc_id, media_id, meta, props, created, updated, mtime)
			VALUES ('a/4e3005310add6229778caf6babfe7cfb/vm.mp3', 'a/4e3005310add6229778caf6babfe7cfb', 'b', 3, 's', 'audio/mpeg', '', '', '` + meta + `', '{}', 1, 1, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	hits, err := x.Search(context.Background(), index.Query{Caller: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 {
		t.Fatalf("search after open: %d hits, want 1", len(hits))
	}
	h := hits[0]
	if h.Mailbox != "2001" || h.CallerNumber != "+15550001" || h.Account != "4e3005310add6229778caf6babfe7cfb" ||
		h.At.Unix() != 63871000000-62167219200 || h.Kind != "mailbox_message" {
		t.Errorf("derived: %+v", h.Recording)
	}
}

// BenchmarkSearch: the browser's queries on 100 000 objects
// (indextest.BenchSearch; docs/ui.md has the figures).
func BenchmarkSearch(b *testing.B) {
	x, err := Open(filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	indextest.BenchSearch(b, x)
}
