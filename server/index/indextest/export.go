package indextest

import (
	"slices"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

func dirs(t *testing.T, x index.Exporter, after string) []index.Dir {
	t.Helper()
	var out []index.Dir
	if err := x.Dirs(ctx, after, func(d index.Dir) error { out = append(out, d); return nil }); err != nil {
		t.Fatalf("folders: %v", err)
	}
	return out
}

func queued(t *testing.T, x index.Exporter, after int64) []index.QueuedDelivery {
	t.Helper()
	var out []index.QueuedDelivery
	if err := x.Deliveries(ctx, after, func(q index.QueuedDelivery) error { out = append(out, q); return nil }); err != nil {
		t.Fatalf("deliveries: %v", err)
	}
	return out
}

func dirEqual(a, b index.Dir) bool {
	return a.Key == b.Key && string(a.Props) == string(b.Props) && a.Created == b.Created && a.ModTime == b.ModTime
}

// queuedEqual compares two queued deliveries but for their IDs.
func queuedEqual(a, b index.QueuedDelivery) bool {
	a.ID, b.ID = 0, 0
	ao, bo, an, bn := a.Occurred, b.Occurred, a.Next, b.Next
	a.Occurred, b.Occurred, a.Next, b.Next = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && ao.Equal(bo) && an.Equal(bn)
}

// testExport: the folders and deliveries of x, read out and taken in by y
// (the folders through PutDirs and UpdateDir), are the same there; taking
// them in again adds nothing.
func testExport(t *testing.T, x, y index.Index) {
	ex, ok := x.(index.Exporter)
	if !ok {
		t.Fatalf("%T is no index.Exporter", x)
	}
	im, ok := y.(index.Importer)
	if !ok {
		t.Fatalf("%T is no index.Importer", y)
	}
	put(t, x, obj("a/b/c"), obj("a/d"))
	update(t, x, func(tx index.Tx) error {
		if err := tx.PutDirs("e/f", t0); err != nil {
			return err
		}
		return tx.UpdateDir(index.Dir{Key: "e", Props: []byte(`{"{ns}p":"1"}`), ModTime: t0.Add(time.Hour).UnixNano()})
	})
	all := dirs(t, ex, "")
	var keys []string
	for _, d := range all {
		keys = append(keys, d.Key)
	}
	if !slices.Equal(keys, []string{"a", "a/b", "e", "e/f"}) {
		t.Fatalf("folders: %q", keys)
	}
	if e := all[2]; string(e.Props) != `{"{ns}p":"1"}` || e.Created != t0.UnixNano() || e.ModTime != t0.Add(time.Hour).UnixNano() {
		t.Fatalf("folder e: %+v", e)
	}
	if got := dirs(t, ex, "a/b"); len(got) != 2 || got[0].Key != "e" {
		t.Fatalf("folders after a/b: %+v", got)
	}
	update(t, y, func(tx index.Tx) error {
		for _, d := range all {
			if err := tx.PutDirs(d.Key, time.Unix(0, d.Created)); err != nil {
				return err
			}
			if err := tx.UpdateDir(d); err != nil {
				return err
			}
		}
		return nil
	})
	if got := dirs(t, y.(index.Exporter), ""); !slices.EqualFunc(got, all, dirEqual) {
		t.Fatalf("folders taken in: %+v, want %+v", got, all)
	}

	enqueue(t, x, delivery("s", index.ChangeCreated, "retry"), delivery("s", index.ChangeCreated, "dead"),
		delivery("s", index.ChangeCreated, "leased"), delivery("h", index.ChangeDeleted, "new"))
	ds := claim(t, x, "s", 3, time.Minute, t0)
	next := t0.Add(10 * time.Second)
	if err := x.Finish(ctx, []index.Outcome{{ID: ds[0].ID, Next: next, Error: "503"},
		{ID: ds[1].ID, Dead: true, Error: "refused"}}); err != nil {
		t.Fatal(err)
	}
	qs := queued(t, ex, 0)
	if len(qs) != 4 {
		t.Fatalf("deliveries: %+v", qs)
	}
	want := []struct {
		key      string
		attempts int
		dead     bool
		next     time.Time
		err      string
	}{{"retry", 1, false, next, "503"}, {"dead", 1, true, t0, "refused"}, {"leased", 1, false, t0, ""}, {"new", 0, false, t0, ""}}
	for i, w := range want {
		q := qs[i]
		if q.Key != w.key || q.Attempts != w.attempts || q.Dead != w.dead || !q.Next.Equal(w.next) || q.Error != w.err ||
			q.EventID == "" || q.RequestID != "req-1" || q.Reason != "test" || !q.Occurred.Equal(t0) || q.DocID != "doc" {
			t.Fatalf("delivery %d: %+v, want %+v", i, q, w)
		}
	}
	if got := queued(t, ex, qs[1].ID); len(got) != 2 || got[0].Key != "leased" {
		t.Fatalf("deliveries after the second: %+v", got)
	}

	if n, err := im.ImportDeliveries(ctx, qs); err != nil || n != 4 {
		t.Fatalf("import = %d, %v", n, err)
	}
	if n, err := im.ImportDeliveries(ctx, qs); err != nil || n != 0 {
		t.Fatalf("import again = %d, %v; want 0", n, err)
	}
	if got := queued(t, y.(index.Exporter), 0); !slices.EqualFunc(got, qs, queuedEqual) {
		t.Fatalf("deliveries taken in: %+v, want %+v", got, qs)
	}
	if sx, sy := stats(t, x), stats(t, y); !statsEqual(sx, sy) {
		t.Fatalf("stats taken in: %+v, want %+v", sy, sx)
	}
	// Leases are not taken in: what was leased is due at once.
	if got := claim(t, y, "s", 10, time.Minute, next); !slices.Equal(keysOf(got),
		[]string{index.ChangeCreated + " leased", index.ChangeCreated + " retry"}) || got[0].Attempts != 2 {
		t.Fatalf("claimed after import: %+v", got)
	}
}
