// Package indextest checks that an implementation of index.Index behaves as
// the store needs: every implementation runs Run in its tests.
package indextest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

// Run runs the conformance tests against indexes made by open, which must
// return a new, empty index for each call; Run closes them.
func Run(t *testing.T, open func(t *testing.T) index.Index) {
	tests := []struct {
		name string
		fn   func(t *testing.T, x index.Index)
	}{
		{"Objects", testObjects},
		{"Lookups", testLookups},
		{"List", testList},
		{"Usage", testUsage},
		{"TrackedUsage", testTrackedUsage},
		{"Search", testSearch},
		{"ImpliedDirs", testImpliedDirs},
		{"DeleteTree", testDeleteTree},
		{"MoveTree", testMoveTree},
		{"DeadProps", testDeadProps},
		{"Rollback", testRollback},
		{"TxGet", testTxGet},
		{"TxWalk", testTxWalk},
		{"CreateObject", testCreateObject},
		{"SwapObject", testSwapObject},
		{"Rebuild", testRebuild},
		{"Locks", testLocks},
		{"LockConflicts", testLockConflicts},
		{"LockRelease", testLockRelease},
		{"Enqueue", testEnqueue},
		{"Coalesce", testCoalesce},
		{"ClaimLease", testClaimLease},
		{"FinishRetryDead", testFinishRetryDead},
		{"Release", testRelease},
		{"Subscribe", testSubscribe},
		{"Watch", testWatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := open(t)
			t.Cleanup(func() {
				if err := x.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, x)
		})
	}
	// Export reads one index out into another.
	t.Run("Export", func(t *testing.T) {
		x, y := open(t), open(t)
		t.Cleanup(func() {
			if err := errors.Join(x.Close(), y.Close()); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		testExport(t, x, y)
	})
}

var ctx = context.Background()

// t0 is a fixed time: implementations must keep times to the nanosecond.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

func obj(key string) index.Object {
	return index.Object{Key: key, Blob: "b-" + strings.ReplaceAll(key, "/", "-"), Size: int64(len(key)),
		SHA256: fmt.Sprintf("%064x", len(key)), ContentType: "audio/mpeg", Meta: json.RawMessage(`{"k":"v"}`),
		Props: json.RawMessage(`{}`), Created: t0, Updated: t0.Add(time.Second), ModTime: t0.Add(2 * time.Second)}
}

func update(t *testing.T, x index.Index, fn func(tx index.Tx) error) {
	t.Helper()
	if err := x.Update(ctx, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func put(t *testing.T, x index.Index, objs ...index.Object) {
	t.Helper()
	update(t, x, func(tx index.Tx) error {
		for _, o := range objs {
			if err := tx.PutObject(o); err != nil {
				return err
			}
		}
		return nil
	})
}

func putKeys(t *testing.T, x index.Index, keys ...string) {
	t.Helper()
	for _, k := range keys {
		put(t, x, obj(k))
	}
}

func same(a, b index.Object) bool {
	return a.Key == b.Key && a.Blob == b.Blob && a.Size == b.Size && a.SHA256 == b.SHA256 &&
		a.ContentType == b.ContentType && a.DocID == b.DocID && a.MediaID == b.MediaID &&
		string(a.Meta) == string(b.Meta) && string(a.Props) == string(b.Props) &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated) && a.ModTime.Equal(b.ModTime)
}

func mustGet(t *testing.T, x index.Index, key string) index.Object {
	t.Helper()
	o, err := x.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return o
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("%s: got %v, want ErrNotFound", what, err)
	}
}

func testObjects(t *testing.T, x index.Index) {
	_, err := x.Get(ctx, "a/x")
	wantNotFound(t, "get missing", err)
	o := obj("a/x")
	o.DocID, o.MediaID = "doc1", "media1"
	put(t, x, o)
	if got := mustGet(t, x, "a/x"); !same(got, o) {
		t.Fatalf("get: got %+v, want %+v", got, o)
	}
	o2 := o
	o2.Blob, o2.Size, o2.SHA256, o2.Meta = "b2", 99, strings.Repeat("e", 64), json.RawMessage(`{"v":2}`)
	o2.Updated = t0.Add(time.Hour)
	put(t, x, o2)
	if got := mustGet(t, x, "a/x"); !same(got, o2) {
		t.Fatalf("overwrite: got %+v, want %+v", got, o2)
	}
	if in, err := x.BlobInUse(ctx, "b2"); err != nil || !in {
		t.Fatalf("BlobInUse(current) = %v, %v", in, err)
	}
	if in, err := x.BlobInUse(ctx, o.Blob); err != nil || in {
		t.Fatalf("BlobInUse(replaced) = %v, %v", in, err)
	}
	if used, err := x.BlobsInUse(ctx, []string{"b2", o.Blob, "unknown", "b2"}); err != nil || len(used) != 1 || !used["b2"] {
		t.Fatalf("BlobsInUse(current, replaced, unknown, current) = %v, %v; want only b2", used, err)
	}
	if used, err := x.BlobsInUse(ctx, nil); err != nil || len(used) != 0 {
		t.Fatalf("BlobsInUse(none) = %v, %v", used, err)
	}
	// Empty metadata and properties read back as an empty JSON object.
	e := obj("a/empty")
	e.Meta, e.Props = nil, nil
	put(t, x, e)
	if got := mustGet(t, x, "a/empty"); string(got.Meta) != "{}" || string(got.Props) != "{}" {
		t.Fatalf("empty meta/props: got %s %s, want {} {}", got.Meta, got.Props)
	}
	update(t, x, func(tx index.Tx) error { return tx.DeleteObject("a/x") })
	_, err = x.Get(ctx, "a/x")
	wantNotFound(t, "get deleted", err)
	update(t, x, func(tx index.Tx) error { return tx.DeleteObject("a/never") })
}

func testLookups(t *testing.T, x index.Index) {
	putKeys(t, x, "a", "a/b/c")
	o, err := x.Longest(ctx, []string{"a/b/c", "a/b", "a"})
	if err != nil || o.Key != "a/b/c" {
		t.Fatalf("Longest = %q, %v; want a/b/c", o.Key, err)
	}
	if o, err := x.Longest(ctx, []string{"a/b", "a"}); err != nil || o.Key != "a" {
		t.Fatalf("Longest = %q, %v; want a", o.Key, err)
	}
	_, err = x.Longest(ctx, []string{"z", "z/y"})
	wantNotFound(t, "Longest of missing keys", err)
	_, err = x.Longest(ctx, nil)
	wantNotFound(t, "Longest of no keys", err)

	old, newer, other := obj("t1/m"), obj("t2/m"), obj("t2/d")
	old.MediaID, newer.MediaID, other.DocID = "m1", "m1", "d1"
	newer.Updated = old.Updated.Add(time.Minute)
	put(t, x, old, newer, other)
	if o, err := x.ByID(ctx, "m1", ""); err != nil || o.Key != "t2/m" {
		t.Fatalf("ByID newest = %q, %v; want t2/m", o.Key, err)
	}
	if o, err := x.ByID(ctx, "m1", "t1"); err != nil || o.Key != "t1/m" {
		t.Fatalf("ByID under t1 = %q, %v; want t1/m", o.Key, err)
	}
	if o, err := x.ByID(ctx, "d1", "t1"); err != nil || o.Key != "t2/d" {
		t.Fatalf("ByID doc id = %q, %v; want t2/d", o.Key, err)
	}
	_, err = x.ByID(ctx, "nope", "")
	wantNotFound(t, "ByID missing", err)
}

type listing []string

func list(t *testing.T, x index.Index, parent string, fields index.Fields) (listing, []index.Entry) {
	t.Helper()
	var names listing
	var es []index.Entry
	err := x.List(ctx, parent, fields, func(e index.Entry) error {
		n := e.Name
		if e.IsDir {
			n += "/"
		}
		names = append(names, n)
		es = append(es, e)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", parent, err)
	}
	return names, es
}

func walk(t *testing.T, x index.Index, prefix string) []string {
	t.Helper()
	var keys []string
	if err := x.Walk(ctx, prefix, func(o index.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatalf("walk %q: %v", prefix, err)
	}
	return keys
}

// testTxWalk: Tx.Walk visits a folder bigger than any page once, in key
// order, while fn writes in the same transaction; fn's error ends the walk,
// comes back as it is and rolls the transaction back.
func testTxWalk(t *testing.T, x index.Index) {
	const n = 2100 // more than two pages of every implementation
	var objs, want []index.Object
	for i := range n {
		o := obj(fmt.Sprintf("w/%05d", i))
		objs, want = append(objs, o), append(want, o)
	}
	objs = append(objs, obj("wx/a"), obj("v/z"), obj("w")) // beside the folder w, not in it
	put(t, x, objs...)

	var got []string
	update(t, x, func(tx index.Tx) error {
		got = got[:0]
		return tx.Walk("w", func(o index.Object) error {
			got = append(got, o.Key)
			c := o
			c.Key = "copy/" + o.Key
			return tx.PutObject(c)
		})
	})
	if len(got) != n {
		t.Fatalf("Tx.Walk visited %d objects, want %d", len(got), n)
	}
	for i, k := range got {
		if k != want[i].Key {
			t.Fatalf("Tx.Walk visit %d: %q, want %q", i, k, want[i].Key)
		}
	}
	if c := walk(t, x, "copy/w"); len(c) != n {
		t.Fatalf("%d objects written during the walk, want %d", len(c), n)
	}

	stop := errors.New("stop")
	visited := 0
	err := x.Update(ctx, func(tx index.Tx) error {
		visited = 0
		return tx.Walk("w", func(o index.Object) error {
			if visited++; visited == 300 {
				return stop
			}
			return tx.DeleteTree("copy")
		})
	})
	if !errors.Is(err, stop) || visited != 300 {
		t.Fatalf("Tx.Walk with fn failing at 300: %v after %d visits, want %v after 300", err, visited, stop)
	}
	if c := walk(t, x, "copy/w"); len(c) != n {
		t.Fatalf("after the rollback %d objects are left under copy/w, want %d", len(c), n)
	}
}

// testUsage: Usage sums the objects Walk visits, and follows changes.
func testUsage(t *testing.T, x index.Index) {
	usage := func(prefix string) [2]int64 {
		t.Helper()
		b, n, err := x.Usage(ctx, prefix)
		if err != nil {
			t.Fatalf("usage %q: %v", prefix, err)
		}
		return [2]int64{b, n}
	}
	if got := usage(""); got != [2]int64{} {
		t.Fatalf("usage of an empty index = %v", got)
	}
	putKeys(t, x, "d/a", "d/b/c", "d0", "d-x/y", "top")
	for _, tt := range []struct {
		prefix string
		want   [2]int64
	}{
		{"", [2]int64{3 + 5 + 2 + 5 + 3, 5}},
		{"d", [2]int64{3 + 5, 2}}, // not d0 nor d-x
		{"d/b", [2]int64{5, 1}},
		{"d/a", [2]int64{}}, // an object is not a folder
		{"none", [2]int64{}},
	} {
		if got := usage(tt.prefix); got != tt.want {
			t.Errorf("usage %q = %v, want %v", tt.prefix, got, tt.want)
		}
	}
	update(t, x, func(tx index.Tx) error {
		o := obj("d/a")
		o.Size = 1000
		if err := tx.PutObject(o); err != nil {
			return err
		}
		return tx.DeleteObject("d/b/c")
	})
	if got := usage("d"); got != [2]int64{1000, 1} {
		t.Errorf("usage d after an overwrite and a delete = %v", got)
	}
}

// testTrackedUsage: the usage of the folders TrackUsage names stays what
// Walk sums, through every kind of change, a rolled-back one included, and
// when the set of folders changes.
func testTrackedUsage(t *testing.T, x index.Index) {
	folders := []string{"", "d", "d/b", "e", "none"}
	check := func(step string) {
		t.Helper()
		for _, p := range folders {
			var want [2]int64
			if err := x.Walk(ctx, p, func(o index.Object) error {
				want[0] += o.Size
				want[1]++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			b, n, err := x.Usage(ctx, p)
			if err != nil {
				t.Fatalf("%s: usage %q: %v", step, p, err)
			}
			if got := [2]int64{b, n}; got != want {
				t.Errorf("%s: usage %q = %v, want %v", step, p, got, want)
			}
		}
	}
	putKeys(t, x, "d/a", "d/b/c", "d0", "d-x/y", "top")
	if err := x.TrackUsage(ctx, folders); err != nil {
		t.Fatalf("TrackUsage: %v", err)
	}
	check("after TrackUsage")
	putKeys(t, x, "d/b/new", "e/f/g")
	check("after new objects")
	update(t, x, func(tx index.Tx) error {
		o := obj("d/a")
		o.Size = 1000
		if err := tx.PutObject(o); err != nil {
			return err
		}
		if _, err := tx.CreateObject(obj("e/h")); err != nil {
			return err
		}
		if _, err := tx.CreateObject(obj("d/b/c")); err != nil { // there already: no change
			return err
		}
		g := obj("e/f/g")
		g.Size = 77
		if _, _, err := tx.SwapObject(g); err != nil {
			return err
		}
		if _, _, err := tx.SwapObject(obj("e/swapped")); err != nil {
			return err
		}
		return tx.DeleteObject("d0")
	})
	check("after overwrites, creates and a delete")
	if err := x.Update(ctx, func(tx index.Tx) error {
		if err := tx.PutObject(obj("d/b/rolled-back")); err != nil {
			return err
		}
		return errors.New("roll back")
	}); err == nil {
		t.Fatal("an Update whose fn failed succeeded")
	}
	check("after a rollback")
	// Inside a transaction, KeptUsage counts its own changes, and knows
	// only the folders kept.
	update(t, x, func(tx index.Tx) error {
		before, _, err := tx.KeptUsage("e")
		if err != nil {
			return err
		}
		o := obj("e/in-tx")
		if err := tx.PutObject(o); err != nil {
			return err
		}
		if b, _, err := tx.KeptUsage("e"); err != nil || b != before+o.Size {
			t.Errorf("KeptUsage(e) after a put in the transaction = %d, %v; want %d", b, err, before+o.Size)
		}
		_, _, err = tx.KeptUsage("d-x")
		wantNotFound(t, "KeptUsage of a folder not kept", err)
		return nil
	})
	check("after a transaction that read its own usage")
	update(t, x, func(tx index.Tx) error { return tx.MoveTree("d/b", "e/b") })
	check("after a move between folders")
	update(t, x, func(tx index.Tx) error { return tx.DeleteTree("e/b") })
	check("after a folder delete")
	if err := x.TrackUsage(ctx, []string{"d", "e/f"}); err != nil {
		t.Fatalf("TrackUsage again: %v", err)
	}
	folders = append(folders, "e/f")
	putKeys(t, x, "e/f/k", "d/z")
	check("after the set of folders changed")
	update(t, x, func(tx index.Tx) error { return tx.ClearObjects() })
	check("after ClearObjects")
}

func testList(t *testing.T, x index.Index) {
	putKeys(t, x, "d/z", "d/a", "d/m/x", "d/b/y", "d/a b", "top", "d0", "d-x/y")
	got, es := list(t, x, "d", index.AllFields)
	if want := (listing{"b/", "m/", "a", "a b", "z"}); !slices.Equal(got, want) {
		t.Fatalf("list d = %q, want %q", got, want)
	}
	if o := es[2].Object; es[2].Key != "d/a" || !same(o, obj("d/a")) {
		t.Fatalf("list d: full entry %+v", es[2])
	}
	if got, _ := list(t, x, "", index.AllFields); !slices.Equal(got, listing{"d/", "d-x/", "d0", "top"}) {
		t.Fatalf("list root = %q", got)
	}
	// Listing fields: what a PROPFIND shows, Meta only when asked for.
	for _, f := range []index.Fields{index.ListFields, index.ListFieldsMeta} {
		_, es := list(t, x, "d", f)
		o, want := es[2].Object, obj("d/a")
		if o.Key != want.Key || o.Size != want.Size || o.SHA256 != want.SHA256 || o.ContentType != want.ContentType ||
			!o.Created.Equal(want.Created) || !o.ModTime.Equal(want.ModTime) || string(o.Props) != string(want.Props) {
			t.Fatalf("list fields %d: got %+v, want %+v", f, o, want)
		}
		if (f == index.ListFieldsMeta) != (string(o.Meta) == string(want.Meta)) {
			t.Fatalf("list fields %d: meta %q", f, o.Meta)
		}
	}
	if got := walk(t, x, "d"); !slices.Equal(got, []string{"d/a", "d/a b", "d/b/y", "d/m/x", "d/z"}) {
		t.Fatalf("walk d = %q", got)
	}
	if got := walk(t, x, ""); len(got) != 8 {
		t.Fatalf("walk all = %q", got)
	}
	stop := errors.New("stop")
	if err := x.List(ctx, "d", index.AllFields, func(index.Entry) error { return stop }); err != stop {
		t.Fatalf("list: fn's error: got %v", err)
	}
}

func testImpliedDirs(t *testing.T, x index.Index) {
	putKeys(t, x, "a/b/c/obj")
	for _, k := range []string{"a", "a/b", "a/b/c"} {
		d, err := x.Dir(ctx, k)
		if err != nil || d.Key != k || string(d.Props) != "{}" {
			t.Fatalf("implied folder %q: %+v, %v", k, d, err)
		}
	}
	_, err := x.Dir(ctx, "a/b/c/obj")
	wantNotFound(t, "an object is no folder", err)
	at := t0.Add(time.Hour)
	update(t, x, func(tx index.Tx) error { return tx.PutDirs("a/new/deeper", at) })
	d, err := x.Dir(ctx, "a/new/deeper")
	if err != nil || d.Created != at.UnixNano() || d.ModTime != at.UnixNano() {
		t.Fatalf("PutDirs: %+v, %v", d, err)
	}
	if got, _ := list(t, x, "a", index.AllFields); !slices.Equal(got, listing{"b/", "new/"}) {
		t.Fatalf("list a = %q", got)
	}
	// Recording a folder again keeps it as it was.
	update(t, x, func(tx index.Tx) error { return tx.PutDirs("a/new", t0) })
	if d, _ := x.Dir(ctx, "a/new"); d.Created != at.UnixNano() {
		t.Fatalf("PutDirs changed an existing folder: %+v", d)
	}
}

func testDeleteTree(t *testing.T, x index.Index) {
	putKeys(t, x, "a/b/x", "a/b/c/y", "a/bz", "a/b0/z")
	update(t, x, func(tx index.Tx) error { return tx.DeleteTree("a/b") })
	if got := walk(t, x, ""); !slices.Equal(got, []string{"a/b0/z", "a/bz"}) {
		t.Fatalf("after DeleteTree: %q", got)
	}
	for _, k := range []string{"a/b", "a/b/c"} {
		_, err := x.Dir(ctx, k)
		wantNotFound(t, "deleted folder "+k, err)
	}
	if _, err := x.Dir(ctx, "a/b0"); err != nil {
		t.Fatalf("sibling folder: %v", err)
	}
}

func testMoveTree(t *testing.T, x index.Index) {
	putKeys(t, x, "a/b/x", "a/b/c/y", "a/bz", "dst/keep")
	props := json.RawMessage(`{"p":"1"}`)
	update(t, x, func(tx index.Tx) error {
		return tx.UpdateDir(index.Dir{Key: "a/b/c", Props: props, ModTime: 7})
	})
	update(t, x, func(tx index.Tx) error { return tx.MoveTree("a/b", "dst/moved") })
	if got := walk(t, x, ""); !slices.Equal(got, []string{"a/bz", "dst/keep", "dst/moved/c/y", "dst/moved/x"}) {
		t.Fatalf("after MoveTree: %q", got)
	}
	if got, _ := list(t, x, "dst/moved", index.AllFields); !slices.Equal(got, listing{"c/", "x"}) {
		t.Fatalf("list moved = %q", got)
	}
	if got, _ := list(t, x, "dst", index.AllFields); !slices.Equal(got, listing{"moved/", "keep"}) {
		t.Fatalf("list dst = %q", got)
	}
	if got, _ := list(t, x, "a", index.AllFields); !slices.Equal(got, listing{"bz"}) {
		t.Fatalf("list a = %q", got)
	}
	if d, err := x.Dir(ctx, "dst/moved/c"); err != nil || string(d.Props) != string(props) {
		t.Fatalf("moved folder's properties: %+v, %v", d, err)
	}
	if o := mustGet(t, x, "dst/moved/c/y"); o.Blob != obj("a/b/c/y").Blob {
		t.Fatalf("moved object: %+v", o)
	}
	// Non-ASCII keys move by characters, not bytes.
	putKeys(t, x, "ünï/cödé/f")
	update(t, x, func(tx index.Tx) error { return tx.MoveTree("ünï/cödé", "ünï/ß") })
	if got := walk(t, x, "ünï"); !slices.Equal(got, []string{"ünï/ß/f"}) {
		t.Fatalf("non-ASCII move: %q", got)
	}
}

func testDeadProps(t *testing.T, x index.Index) {
	o := obj("f/o")
	o.Props = json.RawMessage(`{"{DAV:}x":"1"}`)
	put(t, x, o)
	if got := mustGet(t, x, "f/o"); string(got.Props) != string(o.Props) {
		t.Fatalf("object props: %s", got.Props)
	}
	update(t, x, func(tx index.Tx) error {
		return tx.UpdateDir(index.Dir{Key: "f", Props: []byte(`{"{ns}y":"2"}`), ModTime: t0.UnixNano()})
	})
	d, err := x.Dir(ctx, "f")
	if err != nil || string(d.Props) != `{"{ns}y":"2"}` || d.ModTime != t0.UnixNano() {
		t.Fatalf("folder props: %+v, %v", d, err)
	}
	_, es := list(t, x, "", index.AllFields)
	if len(es) != 1 || string(es[0].Dir.Props) != `{"{ns}y":"2"}` {
		t.Fatalf("listed folder props: %+v", es)
	}
	update(t, x, func(tx index.Tx) error { return tx.UpdateDir(index.Dir{Key: "f", ModTime: 1}) })
	if d, _ := x.Dir(ctx, "f"); string(d.Props) != "{}" {
		t.Fatalf("cleared folder props: %s", d.Props)
	}
}

// testTxGet: a transaction reads the rows it is about to replace, its own
// writes included.
func testTxGet(t *testing.T, x index.Index) {
	putKeys(t, x, "a")
	update(t, x, func(tx index.Tx) error {
		if o, err := tx.Get("a"); err != nil || o.Blob != obj("a").Blob {
			t.Errorf("Get a = %+v, %v", o, err)
		}
		_, err := tx.Get("b")
		wantNotFound(t, "Get of nothing in a transaction", err)
		if err := tx.PutObject(obj("b")); err != nil {
			return err
		}
		if o, err := tx.Get("b"); err != nil || o.Key != "b" {
			t.Errorf("Get of its own write = %+v, %v", o, err)
		}
		if err := tx.DeleteObject("a"); err != nil {
			return err
		}
		_, err = tx.Get("a")
		wantNotFound(t, "Get of its own delete", err)
		return nil
	})
}

// CreateObject stores a new key as PutObject does, folders included, and
// leaves a key that has an object as it is.
func testCreateObject(t *testing.T, x index.Index) {
	putKeys(t, x, "old/x")
	fresh := obj("f/g/new")
	again := obj("old/x")
	again.Blob = "b-other"
	update(t, x, func(tx index.Tx) error {
		if ok, err := tx.CreateObject(fresh); err != nil || !ok {
			t.Errorf("CreateObject of a new key = %v, %v; want true", ok, err)
		}
		if ok, err := tx.CreateObject(again); err != nil || ok {
			t.Errorf("CreateObject of a key with an object = %v, %v; want false", ok, err)
		}
		if o, err := tx.Get("f/g/new"); err != nil || o.Blob != fresh.Blob {
			t.Errorf("Get of its own create = %+v, %v", o, err)
		}
		return nil
	})
	if o, err := x.Get(ctx, "f/g/new"); err != nil || o.Blob != fresh.Blob || o.Size != fresh.Size ||
		o.SHA256 != fresh.SHA256 || string(o.Meta) != string(fresh.Meta) || !o.Created.Equal(fresh.Created) {
		t.Errorf("created = %+v, %v; want %+v", o, err, fresh)
	}
	if o, err := x.Get(ctx, "old/x"); err != nil || o.Blob != obj("old/x").Blob {
		t.Errorf("CreateObject changed an existing object: %+v, %v", o, err)
	}
	for _, k := range []string{"f", "f/g"} {
		if _, err := x.Dir(ctx, k); err != nil {
			t.Errorf("folder %q of a created object: %v", k, err)
		}
	}
	if hits, err := x.Search(ctx, index.Query{Under: "f"}); err != nil || len(hits) != 1 {
		t.Errorf("search finds %d created objects, %v; want 1", len(hits), err)
	}
}

// SwapObject stores as PutObject does, folders included, and returns the
// row it replaced: the one committed before, or the transaction's own.
func testSwapObject(t *testing.T, x index.Index) {
	putKeys(t, x, "old/x")
	fresh := obj("f/g/new")
	again := obj("old/x")
	again.Blob, again.Size = "b-other", 99
	third := again
	third.Blob = "b-third"
	update(t, x, func(tx index.Tx) error {
		// The first statement of its transaction: it begins it too.
		if o, found, err := tx.SwapObject(again); err != nil || !found || o.Blob != obj("old/x").Blob ||
			o.Size != obj("old/x").Size || string(o.Meta) != `{"k":"v"}` || !o.Created.Equal(t0) {
			t.Errorf("SwapObject over an object = %+v, %v, %v; want the committed row", o, found, err)
		}
		if o, found, err := tx.SwapObject(fresh); err != nil || found || o.Key != "" {
			t.Errorf("SwapObject of a new key = %+v, %v, %v; want nothing found", o, found, err)
		}
		if o, found, err := tx.SwapObject(third); err != nil || !found || o.Blob != "b-other" || o.Size != 99 {
			t.Errorf("SwapObject over its own write = %+v, %v, %v; want that write", o, found, err)
		}
		return nil
	})
	for key, blob := range map[string]string{"old/x": "b-third", "f/g/new": fresh.Blob} {
		if o, err := x.Get(ctx, key); err != nil || o.Blob != blob {
			t.Errorf("after SwapObject, %s = %+v, %v; want blob %s", key, o, err, blob)
		}
	}
	for _, k := range []string{"f", "f/g"} {
		if _, err := x.Dir(ctx, k); err != nil {
			t.Errorf("folder %q of a swapped-in object: %v", k, err)
		}
	}
	if hits, err := x.Search(ctx, index.Query{Under: "f"}); err != nil || len(hits) != 1 {
		t.Errorf("search finds %d swapped-in objects, %v; want 1", len(hits), err)
	}
}

func testRollback(t *testing.T, x index.Index) {
	putKeys(t, x, "keep")
	boom := errors.New("boom")
	err := x.Update(ctx, func(tx index.Tx) error {
		if err := tx.PutObject(obj("new/x")); err != nil {
			return err
		}
		if err := tx.DeleteObject("keep"); err != nil {
			return err
		}
		if err := tx.Enqueue(delivery("s", index.ChangeCreated, "new/x")); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update: got %v, want fn's error as it is", err)
	}
	if got := walk(t, x, ""); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("after rollback: %q", got)
	}
	_, err = x.Dir(ctx, "new")
	wantNotFound(t, "folder of a rolled back object", err)
	if ds := claim(t, x, "s", 10, time.Minute, t0.Add(time.Hour)); len(ds) != 0 {
		t.Fatalf("rolled back delivery claimed: %+v", ds)
	}
	// A cancelled context does not stop a change.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := x.Update(cctx, func(tx index.Tx) error { return tx.PutObject(obj("late")) }); err != nil {
		t.Fatalf("Update with a cancelled context: %v", err)
	}
	mustGet(t, x, "late")
}

func testRebuild(t *testing.T, x index.Index) {
	putKeys(t, x, "old/x", "kept/y")
	update(t, x, func(tx index.Tx) error {
		return tx.UpdateDir(index.Dir{Key: "kept", Props: []byte(`{"p":1}`), ModTime: 5})
	})
	if err := x.CreateLock(ctx, lock("l1", "kept", false, false), t0); err != nil {
		t.Fatal(err)
	}
	// A rebuild that fails leaves everything as it was.
	boom := errors.New("walk failed")
	err := x.Update(ctx, func(tx index.Tx) error {
		if err := tx.ClearObjects(); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("failed rebuild: %v", err)
	}
	if got := walk(t, x, ""); !slices.Equal(got, []string{"kept/y", "old/x"}) {
		t.Fatalf("after a failed rebuild: %q", got)
	}
	seen := map[string]bool{"kept": true, "new": true}
	update(t, x, func(tx index.Tx) error {
		if err := tx.ClearObjects(); err != nil {
			return err
		}
		if err := tx.PutDirs("new", t0); err != nil {
			return err
		}
		if err := tx.PutObject(obj("kept/z")); err != nil {
			return err
		}
		return tx.PruneDirs(func(k string) bool { return seen[k] })
	})
	if got := walk(t, x, ""); !slices.Equal(got, []string{"kept/z"}) {
		t.Fatalf("after rebuild: %q", got)
	}
	if got, _ := list(t, x, "", index.AllFields); !slices.Equal(got, listing{"kept/", "new/"}) {
		t.Fatalf("folders after rebuild: %q", got)
	}
	if d, _ := x.Dir(ctx, "kept"); string(d.Props) != `{"p":1}` {
		t.Fatalf("a kept folder lost its properties: %+v", d)
	}
	if _, err := x.LockByToken(ctx, "l1", t0); err != nil {
		t.Fatalf("a rebuild removed a lock: %v", err)
	}
}
