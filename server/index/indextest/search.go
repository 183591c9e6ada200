package indextest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

// gregorian is Kazoo's timestamp for t (docs/kazoo.md §4).
func gregorian(t time.Time) int64 { return t.Unix() + 62167219200 }

// voicemail is an object as the Kazoo route stores a voicemail with its
// document.
func voicemail(key, name, number, mailbox string, at time.Time) index.Object {
	o := obj(key)
	doc := map[string]any{"document": map[string]any{"caller_id_name": name, "caller_id_number": number,
		"mailbox": mailbox, "timestamp": gregorian(at), "length": 4500, "account_id": "acct1"}}
	o.Meta, _ = json.Marshal(doc)
	return o
}

func searchKeys(t *testing.T, x index.Index, q index.Query) []string {
	t.Helper()
	hits, err := x.Search(ctx, q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	keys := []string{}
	for _, h := range hits {
		keys = append(keys, h.Key)
	}
	return keys
}

func testSearch(t *testing.T, x index.Index) {
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	fax := obj("k/acct2/fax/received_file_1.tiff")
	fax.ContentType, fax.Created = "image/TIFF", day.Add(-time.Hour)
	put(t, x,
		voicemail("k/acct1/vm/a.mp3", "Alice Smith", "+15551230001", "1001", day),
		voicemail("k/acct1/vm/b.mp3", "Bob 50%_off", "+15551230002", "1002", day.Add(time.Hour)),
		voicemail("k/acct1/vm/c.mp3", "alice jones", "+15559990003", "1001", day.Add(2*time.Hour)),
		voicemail("k/acct1/vm/d.mp3", "Dora", "+15551230004", "1001", day.Add(2*time.Hour)), // same time as c
		fax)

	h, err := x.Search(ctx, index.Query{Caller: "dora"})
	if err != nil || len(h) != 1 {
		t.Fatalf("search dora: %v %v", h, err)
	}
	want := index.Recording{At: day.Add(2 * time.Hour), Kind: "mailbox_message", Account: "acct1", Mailbox: "1001",
		CallerName: "Dora", CallerNumber: "+15551230004", Duration: 4500 * time.Millisecond}
	if got := h[0].Recording; !got.At.Equal(want.At) || got.Kind != want.Kind || got.Account != want.Account ||
		got.Mailbox != want.Mailbox || got.CallerName != want.CallerName || got.CallerNumber != want.CallerNumber ||
		got.Duration != want.Duration {
		t.Errorf("recording: got %+v, want %+v", got, want)
	}
	if h[0].Size != int64(len("k/acct1/vm/d.mp3")) || h[0].ContentType != "audio/mpeg" || h[0].SHA256 == "" {
		t.Errorf("hit's object: %+v", h[0].Object)
	}

	all := []string{"k/acct1/vm/d.mp3", "k/acct1/vm/c.mp3", "k/acct1/vm/b.mp3", "k/acct1/vm/a.mp3", "k/acct2/fax/received_file_1.tiff"}
	for _, tc := range []struct {
		name string
		q    index.Query
		want []string
	}{
		{"all, newest first, key descending at the same time", index.Query{}, all},
		{"caller name, any case", index.Query{Caller: "ALICE"}, []string{"k/acct1/vm/c.mp3", "k/acct1/vm/a.mp3"}},
		{"caller number substring", index.Query{Caller: "555123"}, []string{"k/acct1/vm/d.mp3", "k/acct1/vm/b.mp3", "k/acct1/vm/a.mp3"}},
		{"LIKE characters are literal", index.Query{Caller: "50%_"}, []string{"k/acct1/vm/b.mp3"}},
		{"percent alone matches only a percent", index.Query{Caller: "%"}, []string{"k/acct1/vm/b.mp3"}},
		{"mailbox", index.Query{Mailbox: "1001"}, []string{"k/acct1/vm/d.mp3", "k/acct1/vm/c.mp3", "k/acct1/vm/a.mp3"}},
		{"account from metadata", index.Query{Account: "acct1"}, all[:4]},
		{"kind", index.Query{Kind: "fax"}, all[4:]},
		{"content type prefix, any case", index.Query{ContentType: "image/tiff"}, all[4:]},
		{"content type family", index.Query{ContentType: "audio/"}, all[:4]},
		{"date range", index.Query{Since: day, Until: day.Add(2 * time.Hour)}, []string{"k/acct1/vm/b.mp3", "k/acct1/vm/a.mp3"}},
		{"under a folder", index.Query{Under: "k/acct2"}, all[4:]},
		{"under a folder's sibling prefix", index.Query{Under: "k/acct"}, []string{}},
		{"combined", index.Query{Caller: "alice", Mailbox: "1001", Since: day.Add(time.Minute)}, []string{"k/acct1/vm/c.mp3"}},
		{"limit", index.Query{Limit: 2}, all[:2]},
		{"nothing", index.Query{Caller: "nobody"}, []string{}},
	} {
		if got := searchKeys(t, x, tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	// Keyset pagination visits every row once, in order, across equal times.
	var paged []string
	q := index.Query{Limit: 2}
	for range 10 {
		hits, err := x.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) == 0 {
			break
		}
		for _, h := range hits {
			paged = append(paged, h.Key)
		}
		c := hits[len(hits)-1].Cursor()
		q.After = &c
	}
	if !slices.Equal(paged, all) {
		t.Errorf("pages: got %q, want %q", paged, all)
	}

	// An object without Kazoo's time sorts by when it was stored.
	if h, _ := x.Search(ctx, index.Query{Kind: "fax"}); len(h) != 1 || !h[0].At.Equal(day.Add(-time.Hour)) || h[0].Account != "" {
		t.Errorf("fax: %+v", h)
	}

	// A new version is derived again; a deleted object is gone.
	update(t, x, func(tx index.Tx) error {
		if err := tx.PutObject(voicemail("k/acct1/vm/a.mp3", "Zed", "+1999", "1003", day)); err != nil {
			return err
		}
		return tx.DeleteObject("k/acct1/vm/b.mp3")
	})
	if got := searchKeys(t, x, index.Query{Mailbox: "1003"}); !slices.Equal(got, []string{"k/acct1/vm/a.mp3"}) {
		t.Errorf("after update: %q", got)
	}
	if got := searchKeys(t, x, index.Query{Caller: "bob"}); len(got) != 0 {
		t.Errorf("after delete: %q", got)
	}
	testGroups(t, x, day)
	testMoveAccount(t, x)
}

// testMoveAccount: an object whose metadata names no account takes it from
// its key, and a folder moved to another account's takes that one.
func testMoveAccount(t *testing.T, x index.Index) {
	const a, b = "4e3005310add6229778caf6babfe7cfb", "0badc0ffee0badc0ffee0badc0ffee00"
	o := voicemail("m/"+a+"/box/vm.mp3", "Mover", "+1", "9", time.Unix(0, 0))
	o.Meta = json.RawMessage(`{"document":{"caller_id_name":"Mover","mailbox":"9"}}`)
	put(t, x, o)
	if got := searchKeys(t, x, index.Query{Account: a}); !slices.Equal(got, []string{o.Key}) {
		t.Fatalf("account from the key: %q", got)
	}
	update(t, x, func(tx index.Tx) error { return tx.MoveTree("m/"+a, "m/"+b) })
	if got := searchKeys(t, x, index.Query{Account: b}); !slices.Equal(got, []string{"m/" + b + "/box/vm.mp3"}) {
		t.Errorf("after moving the folder to account b: %q", got)
	}
	if got := searchKeys(t, x, index.Query{Account: a}); len(got) != 0 {
		t.Errorf("still in account a: %q", got)
	}
}

func testGroups(t *testing.T, x index.Index, day time.Time) {
	str := func(gs []index.Group) string {
		s := ""
		for _, g := range gs {
			s += fmt.Sprintf("%s=%d@%d ", g.Value, g.Count, g.Latest.Sub(day)/time.Hour)
		}
		return s
	}
	gs, err := x.Groups(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := str(gs), "=1@-1 acct1=3@2 "; got != want {
		t.Errorf("accounts: got %q, want %q", got, want)
	}
	gs, err = x.Groups(ctx, "k/acct1", "acct1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := str(gs), "1001=2@2 1003=1@0 "; got != want {
		t.Errorf("mailboxes: got %q, want %q", got, want)
	}
	if gs, err := x.Groups(ctx, "k/acct2", "acct1"); err != nil || len(gs) != 0 {
		t.Errorf("mailboxes outside the folder: %v %v", gs, err)
	}
}

// BenchSearch measures the browser's queries on 100 000 objects in x, which
// must be empty: the first page of the inbox, a page deep in it, a caller
// substring that matches few rows, one that matches none (a full scan), a
// mailbox, a date range, and the accounts with their counts.
func BenchSearch(b *testing.B, x index.Index) {
	const n = 100000
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for start := 0; start < n; start += 5000 {
		err := x.Update(ctx, func(tx index.Tx) error {
			for i := start; i < start+5000; i++ {
				o := index.Object{Key: fmt.Sprintf("kazoo/%032x/%d/vm-%06d.mp3", i%20, i%50, i), Blob: "b", Size: 40000,
					SHA256: "s", ContentType: "audio/mpeg", Created: day, Updated: day, ModTime: day,
					Meta: []byte(fmt.Sprintf(`{"document":{"caller_id_name":"Caller %d","caller_id_number":"+1555%07d",`+
						`"mailbox":"%d","timestamp":%d,"length":30000}}`, i, i, 1000+i%50, gregorian(day)+int64(i)*60))}
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
	deep, err := x.Search(ctx, index.Query{Limit: 50000})
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
				if _, err := x.Search(ctx, bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("groups", func(b *testing.B) {
		for b.Loop() {
			if _, err := x.Groups(ctx, "", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
