package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/indextest"
)

func TestConformance(t *testing.T) {
	indextest.Run(t, func(t *testing.T) index.Index {
		x, err := Open(filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		return x
	})
}

// TestCommitsSyncTheWAL: the write connection runs with synchronous=FULL
// (2), so a committed change and its outbox rows survive a power cut.
func TestCommitsSyncTheWAL(t *testing.T) {
	x, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var mode int
	if err := x.w.QueryRow("PRAGMA synchronous").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 {
		t.Fatalf("PRAGMA synchronous = %d, want 2 (FULL)", mode)
	}
}

type codeErr int

func (c codeErr) Error() string { return "sqlite error" }
func (c codeErr) Code() int     { return int(c) }

func TestFullIsErrFull(t *testing.T) {
	if err := fullErr(fmt.Errorf("index object: %w", codeErr(sqliteFull))); !errors.Is(err, index.ErrFull) {
		t.Fatalf("SQLITE_FULL: got %v, want ErrFull", err)
	}
	// Extended codes carry the primary one in their low byte.
	if err := fullErr(codeErr(sqliteFull | 3<<8)); !errors.Is(err, index.ErrFull) {
		t.Fatalf("extended SQLITE_FULL: got %v", err)
	}
	if err := fullErr(codeErr(1)); errors.Is(err, index.ErrFull) {
		t.Fatal("SQLITE_ERROR mapped to ErrFull")
	}
}

// TestCorruptIsErrCorrupt: a file that is no database is ErrCorrupt at open,
// and MoveAside makes room for a new index.
func TestCorruptIsErrCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	if _, err := Open(path); !errors.Is(err, index.ErrCorrupt) {
		t.Fatalf("open a corrupt index: got %v, want ErrCorrupt", err)
	}
	aside, err := MoveAside(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("moved aside: %v", err)
	}
	x, err = Open(path)
	if err != nil {
		t.Fatalf("open after MoveAside: %v", err)
	}
	x.Close()
}

func TestOpenExistingRefusesToCreate(t *testing.T) {
	if _, err := OpenExisting(filepath.Join(t.TempDir(), "index.db")); err == nil {
		t.Fatal("OpenExisting created an index")
	}
}

func TestCheckSeesAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := os.Rename(path, path+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := x.Check(t.Context()); err == nil {
		t.Fatal("Check passed with the index file gone")
	}
}

// ShrinkMemory runs on the write connection, between changes, and the
// index works on after it.
func TestShrinkMemory(t *testing.T) {
	x, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	put := func(i int) {
		t.Helper()
		if err := x.Update(ctx, func(tx index.Tx) error {
			return tx.PutObject(index.Object{Key: fmt.Sprintf("s/%d", i), Blob: fmt.Sprintf("blob%d", i), Size: int64(i)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		put(i)
	}
	if err := x.ShrinkMemory(ctx); err != nil {
		t.Fatalf("ShrinkMemory: %v", err)
	}
	put(100)
	if o, err := x.Get(ctx, "s/100"); err != nil || o.Blob != "blob100" {
		t.Fatalf("after ShrinkMemory: %+v, %v", o, err)
	}
}

// TestBlobInUseReadsAnIndex: BlobInUse runs at every overwrite and delete;
// reading the whole objects table for it made each one cost a scan of the
// store (an overwrite of a 100 KiB file fell from ~2 500 to ~290 a second
// at 19 000 objects).
func TestBlobInUseReadsAnIndex(t *testing.T) {
	x, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, q := range []struct{ name, query, arg string }{
		{"BlobInUse", blobInUseQuery, "b"},
		{"BlobsInUse", blobsInUseQuery, `["a","b"]`},
	} {
		rows, err := x.r.Query("EXPLAIN QUERY PLAN "+q.query, q.arg)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan[0], "INDEX objects_blob") || strings.Contains(strings.Join(plan, "|"), "SCAN objects") {
			t.Fatalf("%s's plan is %q, want a search of the objects_blob index", q.name, plan)
		}
	}
}

// TestTrackedUsageIsOneRow: Usage of a folder TrackUsage names reads its
// row of folder_usage, not the objects below it (the conformance suite
// checks that the row stays right), and the triggers that keep the rows
// are there only while there are rows to keep.
func TestTrackedUsageIsOneRow(t *testing.T) {
	x, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	if err := x.Update(ctx, func(tx index.Tx) error {
		return tx.PutObject(index.Object{Key: "q/a", Blob: "b", Size: 5})
	}); err != nil {
		t.Fatal(err)
	}
	if err := x.TrackUsage(ctx, []string{"q"}); err != nil {
		t.Fatal(err)
	}
	triggers := func() (n int) {
		t.Helper()
		if err := x.w.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := triggers(); n != len(usageTriggers) {
		t.Fatalf("%d triggers while a folder is kept, want %d", n, len(usageTriggers))
	}
	// A row that disagrees with the objects shows whether Usage reads it.
	if _, err := x.w.Exec(`UPDATE folder_usage SET bytes = 7 WHERE prefix = 'q'`); err != nil {
		t.Fatal(err)
	}
	if b, n, err := x.Usage(ctx, "q"); err != nil || b != 7 || n != 1 {
		t.Fatalf("Usage(q) = %d, %d, %v; want the row's 7, 1", b, n, err)
	}
	if err := x.TrackUsage(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if b, n, err := x.Usage(ctx, "q"); err != nil || b != 5 || n != 1 {
		t.Fatalf("Usage(q) untracked = %d, %d, %v; want the objects' 5, 1", b, n, err)
	}
	if n := triggers(); n != 0 {
		t.Fatalf("%d triggers with no folder kept: every store would pay for them", n)
	}
}
