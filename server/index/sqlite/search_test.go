package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
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

// BenchmarkSearch measures the browser's queries on 100 000 objects: the
// first page of the inbox, a page deep in it, a caller substring that
// matches few rows, one that matches none (a full scan), and a mailbox.
func BenchmarkSearch(b *testing.B) {
	x, err := Open(filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	const n = 100000
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for start := 0; start < n; start += 5000 {
		err := x.Update(context.Background(), func(tx index.Tx) error {
			for i := start; i < start+5000; i++ {
				o := index.Object{Key: fmt.Sprintf("kazoo/%032x/%d/vm-%06d.mp3", i%20, i%50, i), Blob: "b", Size: 40000,
					SHA256: "s", ContentType: "audio/mpeg", Created: day, Updated: day, ModTime: day,
					Meta: []byte(fmt.Sprintf(`{"document":{"caller_id_name":"Caller %d","caller_id_number":"+1555%07d",`+
						`"mailbox":"%d","timestamp":%d,"length":30000}}`, i, i, 1000+i%50, day.Unix()+62167219200+int64(i)*60))}
				if err := tx.PutObject(o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	deep, err := x.Search(context.Background(), index.Query{Limit: 50000})
	if err != nil || len(deep) != 50000 {
		b.Fatalf("deep page: %d %v", len(deep), err)
	}
	cursor := deep[len(deep)-1].Cursor()
	for _, bc := range []struct {
		name string
		q    index.Query
	}{
		{"inbox", index.Query{}},
		{"inbox-page-1000", index.Query{After: &cursor}},
		{"inbox-under-account", index.Query{Under: fmt.Sprintf("kazoo/%032x", 7)}},
		{"caller-few", index.Query{Caller: "555009999"}},
		{"caller-none", index.Query{Caller: "nobody"}},
		{"mailbox", index.Query{Mailbox: "1007"}},
		{"date-range", index.Query{Since: day.Add(24 * time.Hour), Until: day.Add(48 * time.Hour)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := x.Search(context.Background(), bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("groups", func(b *testing.B) {
		for b.Loop() {
			if _, err := x.Groups(context.Background(), "", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
