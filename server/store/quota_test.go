package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/attachd/attachd/server/index/pg/pgtest"
)

func openQuota(t *testing.T, dir string, qs ...Quota) *Store {
	t.Helper()
	s, err := Open(dir, Options{MaxSize: 64 << 20, Quotas: qs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, key string, n int) error {
	t.Helper()
	_, err := s.Put(context.Background(), key, bytes.NewReader(randBytes(n)), Info{Size: int64(n)})
	return err
}

func usage(t *testing.T, s *Store) []QuotaUsage {
	t.Helper()
	qs, err := s.Quotas(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// TestQuotaRefusesAndLeavesNothing: a store over a quota is ErrQuota with
// nothing stored; an overwrite counts only the difference; deletes free.
func TestQuotaRefusesAndLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openQuota(t, dir, Quota{Name: "/acct", Prefix: "acct", Bytes: 1000, Objects: 3})
	if err := put(t, s, "acct/a", 600); err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "other/big", 5000); err != nil {
		t.Fatalf("outside the quota: %v", err)
	}
	if err := put(t, s, "acct/b", 401); !errors.Is(err, ErrQuota) {
		t.Fatalf("store over the bytes: err = %v, want ErrQuota", err)
	}
	if _, err := s.Stat(ctx, "acct/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused object is there: %v", err)
	}
	if n := countBlobs(t, dir); n != 2 {
		t.Errorf("%d blobs after a refused store, want 2", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp holds %d files", len(entries))
	}
	if err := put(t, s, "acct/b", 400); err != nil {
		t.Fatalf("store that fits exactly: %v", err)
	}
	// Full: an overwrite that grows is refused, one that shrinks is not.
	if err := put(t, s, "acct/a", 601); !errors.Is(err, ErrQuota) {
		t.Fatalf("growing overwrite: err = %v", err)
	}
	if got := readAll(t, s, "acct/a"); len(got) != 600 {
		t.Fatalf("refused overwrite changed the object: %d bytes", len(got))
	}
	if err := put(t, s, "acct/a", 500); err != nil {
		t.Fatalf("shrinking overwrite: %v", err)
	}
	if err := put(t, s, "acct/a", 600); err != nil {
		t.Fatalf("overwrite into what the shrink freed: %v", err)
	}
	if got := usage(t, s); got[0].UsedBytes != 1000 || got[0].UsedObjects != 2 {
		t.Fatalf("usage = %+v", got)
	}
	// Objects: the third fits, a fourth does not, even empty.
	if err := put(t, s, "acct/c", 0); err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "acct/d", 0); !errors.Is(err, ErrQuota) {
		t.Fatalf("fourth object: err = %v", err)
	}
	// Deletes free.
	if err := s.Delete(ctx, "acct/a"); err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "acct/d", 600); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	if err := s.RemoveAll(ctx, "acct"); err != nil {
		t.Fatal(err)
	}
	if got := usage(t, s); got[0].UsedBytes != 0 || got[0].UsedObjects != 0 {
		t.Fatalf("usage after removing the folder = %+v", got)
	}
}

// TestCheckQuota: a declared size is judged before the body, as the commit would.
func TestCheckQuota(t *testing.T) {
	ctx := context.Background()
	s := openQuota(t, t.TempDir(), Quota{Name: "/acct", Prefix: "acct", Bytes: 1000, Objects: 1})
	if err := put(t, s, "acct/a", 600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  string
		size int64
		want error
	}{
		{"acct/a", 1000, nil},      // an overwrite: the difference fits
		{"acct/a", 1001, ErrQuota}, // it does not
		{"acct/b", 0, ErrQuota},    // a second object
		{"acct/b", -1, nil},        // unknown size: the commit decides
		{"other/b", 1 << 40, nil},  // no quota there
	} {
		if err := s.CheckQuota(ctx, tt.key, tt.size); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("CheckQuota(%s, %d) = %v, want %v", tt.key, tt.size, err, tt.want)
		}
	}
}

// TestQuotaNested: a store must fit every quota above it.
func TestQuotaNested(t *testing.T) {
	s := openQuota(t, t.TempDir(),
		Quota{Name: "/", Prefix: "", Bytes: 1000},
		Quota{Name: "/a/b", Prefix: "a/b", Objects: 1})
	if err := put(t, s, "a/b/x", 10); err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "a/b/y", 10); !errors.Is(err, ErrQuota) {
		t.Fatalf("inner quota: err = %v", err)
	}
	if err := put(t, s, "a/z", 991); !errors.Is(err, ErrQuota) {
		t.Fatalf("outer quota: err = %v", err)
	}
	qu, ok, err := s.QuotaOf(context.Background(), "a/b")
	if err != nil || !ok || qu.Name != "/" || qu.UsedBytes != 10 {
		t.Fatalf("QuotaOf(a/b) = %+v, %v, %v", qu, ok, err)
	}
}

// TestQuotaCopyMove: copies and moves into a quota count; a move within it
// does not; what an overwrite replaces is freed.
func TestQuotaCopyMove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openQuota(t, dir, Quota{Name: "/q", Prefix: "q", Bytes: 1000})
	for _, k := range []string{"src/a", "src/b"} {
		if err := put(t, s, k, 600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Mkdir(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if err := s.Copy(ctx, "src", "q/dir", false); !errors.Is(err, ErrQuota) {
		t.Fatalf("folder copy over the quota: err = %v", err)
	}
	if _, err := s.StatDir(ctx, "q/dir"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused folder copy left %v", err)
	}
	if err := s.Copy(ctx, "src/a", "q/a", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Move(ctx, "src/b", "q/b", false); !errors.Is(err, ErrQuota) {
		t.Fatalf("move over the quota: err = %v", err)
	}
	if _, err := s.Stat(ctx, "src/b"); err != nil {
		t.Fatalf("refused move lost its source: %v", err)
	}
	// Replacing q/a frees its 600 bytes.
	if err := s.Move(ctx, "src/b", "q/a", true); err != nil {
		t.Fatalf("move over an object of the same size: %v", err)
	}
	if err := s.Move(ctx, "q/a", "q/c", false); err != nil {
		t.Fatalf("move within the quota: %v", err)
	}
	if got := usage(t, s); got[0].UsedBytes != 600 || got[0].UsedObjects != 1 {
		t.Fatalf("usage = %+v", got)
	}
	if n := countBlobs(t, dir); n != 2 {
		t.Errorf("%d blobs, want 2", n)
	}
}

// TestQuotaBelowCopiedFolder: a folder copied or moved above a quota's
// folder brings its subfolder into that quota.
func TestQuotaBelowCopiedFolder(t *testing.T) {
	ctx := context.Background()
	s := openQuota(t, t.TempDir(), Quota{Name: "/d/sub", Prefix: "d/sub", Objects: 1})
	for _, k := range []string{"src/sub/a", "src/sub/b", "one/sub/a"} {
		if err := put(t, s, k, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Copy(ctx, "src", "d", false); !errors.Is(err, ErrQuota) {
		t.Fatalf("copy of two objects into a one-object quota below dst: err = %v", err)
	}
	if err := s.Move(ctx, "src", "d", false); !errors.Is(err, ErrQuota) {
		t.Fatalf("move: err = %v", err)
	}
	if err := s.Copy(ctx, "one", "d", false); err != nil {
		t.Fatalf("copy of one object: %v", err)
	}
	if err := s.Copy(ctx, "one", "d", true); err != nil {
		t.Fatalf("copy over it again (the old one is freed): %v", err)
	}
}

// TestQuotaSharedIndex: with a shared index, each node counts what the
// others stored.
func TestQuotaSharedIndex(t *testing.T) {
	indexURL := pgtest.Database(t)
	backend := t.TempDir()
	open := func() *Store {
		remote, err := NewDirBackend(backend)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { remote.Close() })
		s, err := Open(t.TempDir(), Options{Remote: remote, Through: true, IndexURL: indexURL,
			Quotas: []Quota{{Name: "/acct", Prefix: "acct", Bytes: 1000, Objects: 2}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	if err := put(t, a, "acct/x", 600); err != nil {
		t.Fatal(err)
	}
	if err := put(t, b, "acct/y", 401); !errors.Is(err, ErrQuota) {
		t.Fatalf("node b, over what node a stored: err = %v", err)
	}
	if err := put(t, b, "acct/y", 400); err != nil {
		t.Fatal(err)
	}
	if err := put(t, a, "acct/z", 0); !errors.Is(err, ErrQuota) {
		t.Fatalf("node a, a third object: err = %v", err)
	}
	if err := b.Delete(context.Background(), "acct/x"); err != nil {
		t.Fatal(err)
	}
	if err := put(t, a, "acct/z", 600); err != nil {
		t.Fatalf("node a, after node b deleted: %v", err)
	}
	if got := usage(t, b); got[0].UsedBytes != 1000 || got[0].UsedObjects != 2 {
		t.Fatalf("usage seen by node b = %+v", got)
	}
}

// TestQuotaTracking: the index keeps the usage of the largest quota folders,
// at most maxTrackedQuotas of them; a quota it does not keep is enforced
// all the same, from a read of its folder.
func TestQuotaTracking(t *testing.T) {
	defer func(n int) { maxTrackedQuotas = n }(maxTrackedQuotas)
	maxTrackedQuotas = 1
	dir := t.TempDir()
	s := openQuota(t, dir)
	for _, k := range []string{"small/a", "big/a", "big/b", "big/c"} {
		if err := put(t, s, k, 10); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openQuota(t, dir, Quota{Name: "/small", Prefix: "small", Objects: 2}, Quota{Name: "/big", Prefix: "big", Objects: 4})
	db, err := sql.Open("sqlite", filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var kept []string
	rows, err := db.Query(`SELECT prefix FROM folder_usage`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0] != "big" {
		t.Fatalf("the index keeps the usage of %q, want only the larger folder, big", kept)
	}
	for _, folder := range []string{"small", "big"} {
		if err := put(t, s, folder+"/new", 10); err != nil {
			t.Fatalf("%s: a store that fits: %v", folder, err)
		}
		if err := put(t, s, folder+"/over", 10); !errors.Is(err, ErrQuota) {
			t.Fatalf("%s: a store over the quota: %v, want ErrQuota", folder, err)
		}
	}
}

// TestQuotaExactUnderRace: stores of different keys racing into a folder
// whose usage the index keeps are checked again inside their transactions,
// so together they fill the quota exactly and never pass it.
func TestQuotaExactUnderRace(t *testing.T) {
	raceQuotas(t, func(t *testing.T, q Quota) []*Store { return []*Store{openQuota(t, t.TempDir(), q)} })
}

// raceQuotas runs, for a quota of 5 objects and one of 50 bytes on the
// folder "race", 32 stores of 10 bytes at once, spread over the stores
// open returns (nodes sharing an index, or one), and wants exactly 5 stored
// and each store to see the folder's usage at its quota.
func raceQuotas(t *testing.T, open func(*testing.T, Quota) []*Store) {
	for _, q := range []Quota{
		{Name: "/objects", Prefix: "race", Objects: 5},
		{Name: "/bytes", Prefix: "race", Bytes: 50},
	} {
		t.Run(q.Name[1:], func(t *testing.T) {
			stores := open(t, q)
			start := make(chan struct{})
			errs := make(chan error, 32)
			for i := range cap(errs) {
				s := stores[i%len(stores)]
				go func() {
					<-start
					_, err := s.Put(context.Background(), fmt.Sprintf("race/%02d", i), bytes.NewReader(make([]byte, 10)), Info{Size: 10})
					errs <- err
				}()
			}
			close(start)
			stored := 0
			for range cap(errs) {
				switch err := <-errs; {
				case err == nil:
					stored++
				case !errors.Is(err, ErrQuota):
					t.Fatalf("a store failed otherwise: %v", err)
				}
			}
			for _, s := range stores {
				if u := usage(t, s)[0]; stored != 5 || u.UsedObjects != 5 || u.UsedBytes != 50 {
					t.Fatalf("%d of %d racing stores over %d nodes succeeded, usage %d objects, %d bytes; want exactly 5, 50",
						stored, cap(errs), len(stores), u.UsedObjects, u.UsedBytes)
				}
			}
		})
	}
}
