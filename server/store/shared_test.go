package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/pg/pgtest"
)

// Two stores over one PostgreSQL index and one backend directory are two
// nodes of a cluster (docs/cluster.md), in one process. The end-to-end
// suite (server/e2e/cluster_test.go) drives real processes; these check
// what a client cannot see: which blobs are left in the backend.

// sharedPair opens two write-through stores on one index and one backend,
// with the quotas qs.
func sharedPair(t *testing.T, grace time.Duration, qs ...Quota) (a, b *Store, backend string) {
	t.Helper()
	indexURL := pgtest.Database(t)
	backend = t.TempDir()
	open := func() *Store {
		remote, err := NewDirBackend(backend)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { remote.Close() })
		s, err := Open(t.TempDir(), Options{Remote: remote, Through: true, IndexURL: indexURL, BlobGrace: grace, Quotas: qs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open(), backend
}

// backendBlobs lists the blobs in a DirBackend directory.
func backendBlobs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, d.Name())
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSharedReplacedBlobsWaitForTheGrace: a version replaced on one node
// stays readable in the backend for the grace period (a read streaming it
// on another node finishes), then goes; nothing else is left behind, even
// when both nodes overwrite the same key at once.
func TestSharedReplacedBlobsWaitForTheGrace(t *testing.T) {
	ctx := context.Background()
	a, b, backend := sharedPair(t, 2*time.Second)

	v1, err := a.Put(ctx, "acct/vm.mp3", bytes.NewReader([]byte("version one")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	r, o, err := b.Open(ctx, "acct/vm.mp3") // node b starts streaming v1
	if err != nil || o.Blob != v1.Blob {
		t.Fatalf("open on b: %+v %v", o, err)
	}
	defer r.Close()
	if _, err := a.Put(ctx, "acct/vm.mp3", bytes.NewReader([]byte("version two")), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, "acct/vm.mp3"); string(got) != "version two" {
		t.Fatalf("b reads %q after a's overwrite", got)
	}
	// Within the grace, v1's bytes are still there for the reader.
	stream := make([]byte, 64)
	if n, _ := r.Read(stream); string(stream[:n]) != "version one" {
		t.Fatalf("the stream begun before the overwrite read %q", stream[:n])
	}

	// Both nodes overwrite one key at once: whichever wins, every replaced
	// blob is collected.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			if _, err := s.Put(ctx, "acct/race.mp3", bytes.NewReader([]byte(fmt.Sprint("race ", i))), Info{Size: -1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := b.Delete(ctx, "acct/vm.mp3"); err != nil {
		t.Fatal(err)
	}

	gcCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { a.CollectBlobs(gcCtx); done <- struct{}{} }()
	go func() { b.CollectBlobs(gcCtx); done <- struct{}{} }()
	defer func() { stop(); <-done; <-done }()

	race, err := a.Stat(ctx, "acct/race.mp3")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := backendBlobs(t, backend)
		if len(left) == 1 && left[0] == race.Blob {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend blobs %q, want only %s (the current version of the one object left)", left, race.Blob)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := readAll(t, a, "acct/race.mp3"); !bytes.HasPrefix(got, []byte("race ")) {
		t.Fatalf("current version reads %q", got)
	}
}

// TestSharedReindexFromTheBackend: a shared index rebuilt from the backend
// alone (attachd reindex) holds every object the backend names, and none
// it does not.
func TestSharedReindexFromTheBackend(t *testing.T) {
	ctx := context.Background()
	a, _, backend := sharedPair(t, time.Minute)
	want := map[string]string{}
	for i := range 30 {
		key := fmt.Sprintf("acct/%02d/vm.mp3", i%5)
		if i >= 5 {
			key = fmt.Sprintf("acct/%02d/vm-%d.mp3", i%5, i)
		}
		body := fmt.Sprint("body ", i)
		if _, err := a.Put(ctx, key, bytes.NewReader([]byte(body)), Info{Size: -1, ContentType: "audio/mpeg"}); err != nil {
			t.Fatal(err)
		}
		want[key] = body
	}
	a.Delete(ctx, "acct/00/vm.mp3")
	delete(want, "acct/00/vm.mp3")
	indexURL := a.indexURL

	// The index loses rows behind the store's back; the backend has them.
	if err := a.update(ctx, func(tx index.Tx) error { return tx.DeleteObject("acct/01/vm.mp3") }); err != nil {
		t.Fatal(err)
	}
	remote, err := NewDirBackend(backend)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	n, err := Reindex(ctx, t.TempDir(), Options{Remote: remote, Through: true, IndexURL: indexURL})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("reindexed %d objects, want %d", n, len(want))
	}
	got := map[string]string{}
	a.WalkObjects(ctx, "", func(o Object) error {
		got[o.Key] = string(readAll(t, a, o.Key))
		return nil
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after reindex:\n got %v\nwant %v", got, want)
	}
}

// TestSharedPutReadsOnce: with a shared index, one read before the
// transaction answers both what a store replaces and whether one of its
// folders is an object (Store.previous). Each node must see what the other
// stored: nothing here is known from a node's own tree or caches.
func TestSharedPutReadsOnce(t *testing.T) {
	ctx := context.Background()
	a, b, _ := sharedPair(t, time.Minute)

	v1, err := a.Put(ctx, "acct/vm.mp3", bytes.NewReader([]byte("version one")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "acct/vm.mp3/inner", bytes.NewReader([]byte("y")), Info{Size: -1}); !errors.Is(err, ErrConflict) {
		t.Errorf("object below another node's object: %v, want ErrConflict", err)
	}
	if _, err := b.Put(ctx, "acct/vm.mp3/deeper/inner", bytes.NewReader([]byte("y")), Info{Size: -1}); !errors.Is(err, ErrConflict) {
		t.Errorf("object two folders below another node's object: %v, want ErrConflict", err)
	}
	time.Sleep(10 * time.Millisecond) // a later Updated, the same Created
	v2, err := b.Put(ctx, "acct/vm.mp3", bytes.NewReader([]byte("version two")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Created.Equal(v1.Created) || !v2.Updated.After(v1.Updated) {
		t.Errorf("overwrite on the other node: created %v updated %v, want created %v and a later update than %v",
			v2.Created, v2.Updated, v1.Created, v1.Updated)
	}
	for _, s := range []*Store{a, b} {
		if o, err := s.Stat(ctx, "acct/vm.mp3"); err != nil || o.Blob != v2.Blob || !o.Created.Equal(v1.Created) {
			t.Errorf("stat after the overwrite = %+v, %v; want blob %s created %v", o, err, v2.Blob, v1.Created)
		}
		if _, err := s.Stat(ctx, "acct/vm.mp3/inner"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a refused store left an object: %v", err)
		}
	}
	if _, err := a.Put(ctx, "acct/other.mp3", bytes.NewReader([]byte("z")), Info{Size: -1}); err != nil {
		t.Errorf("a new key beside them: %v", err)
	}
}

// TestSharedQuotaExactUnderRace: stores racing into one folder on two nodes
// fill its quota exactly. PostgreSQL keeps the folder's usage row for both
// (Index.TrackUsage), and each store reads it again inside its transaction,
// where the nodes' writers take turns.
func TestSharedQuotaExactUnderRace(t *testing.T) {
	raceQuotas(t, func(t *testing.T, q Quota) []*Store {
		a, b, _ := sharedPair(t, time.Minute, q)
		return []*Store{a, b}
	})
}

// TestSharedStoreRacedKeepsTheRowsCreation: when another node stores the key
// between a store's first read and its transaction, the store replaces that
// version and keeps its creation time, in the index, in what Put returns and
// in the sidecar in the backend, which the other node's push had replaced
// (through mode pushes the sidecar before the transaction).
func TestSharedStoreRacedKeepsTheRowsCreation(t *testing.T) {
	ctx := context.Background()
	a, b, _ := sharedPair(t, time.Minute)
	var first Object
	raced := beforeTransaction(t, func() {
		var err error
		if first, err = b.Put(ctx, "acct/x.mp3", bytes.NewReader([]byte("b's")), Info{Size: -1}); err != nil {
			t.Errorf("b's store: %v", err)
		}
	})
	time.Sleep(10 * time.Millisecond)
	o, err := a.Put(ctx, "acct/x.mp3", bytes.NewReader([]byte("a's")), Info{Size: -1})
	if err != nil || !*raced {
		t.Fatalf("a's store: %v (raced: %v)", err, *raced)
	}
	if !o.Created.Equal(first.Created) {
		t.Errorf("Put returned created %v; want b's %v", o.Created, first.Created)
	}
	if cur, err := b.Stat(ctx, "acct/x.mp3"); err != nil || cur.Blob != o.Blob || !cur.Created.Equal(first.Created) {
		t.Errorf("index holds %+v, %v; want a's blob %s created %v", cur, err, o.Blob, first.Created)
	}
	if sc, err := a.readRemoteSidecar(ctx, remoteSidecar("acct/x.mp3")); err != nil || sc.Blob != o.Blob || !sc.Created.Equal(first.Created) {
		t.Errorf("backend sidecar = %+v, %v; want a's blob %s created %v", sc, err, o.Blob, first.Created)
	}
}

// beforeTransaction makes the first change to reach failpoint "index" (it
// has read what it needs and checked its quotas, and not begun its
// transaction) call fn first, and reports whether it did.
func beforeTransaction(t *testing.T, fn func()) *bool {
	t.Helper()
	done := new(bool)
	prev := failpoint
	failpoint = func(step string) error {
		if step == "index" && !*done {
			*done = true
			fn()
		}
		return nil
	}
	t.Cleanup(func() { failpoint = prev })
	return done
}

// TestSharedCopyAndMoveRecheckedInTheirTransactions: a copy or a folder's
// move checks the quotas it brings objects to before it commits and again
// inside its transaction, as a store does, so a store on another node that
// filled the quota in between makes it fail and leaves everything as it
// was.
func TestSharedCopyAndMoveRecheckedInTheirTransactions(t *testing.T) {
	for _, tc := range []struct {
		name, src, dst, obj string // obj: the object at src, moved or copied
		change              func(s *Store, src, dst string) error
	}{
		{"copy of an object", "src/x", "q/copy", "src/x", func(s *Store, src, dst string) error {
			return s.Copy(context.Background(), src, dst, false)
		}},
		{"move of a folder", "src/d", "q/d", "src/d/x", func(s *Store, src, dst string) error {
			return s.Move(context.Background(), src, dst, false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, b, _ := sharedPair(t, time.Minute, Quota{Name: "/q", Prefix: "q", Objects: 2})
			for _, k := range []string{"q/1", tc.obj} {
				if _, err := a.Put(ctx, k, bytes.NewReader([]byte(k)), Info{Size: -1}); err != nil {
					t.Fatal(err)
				}
			}
			raced := beforeTransaction(t, func() {
				if _, err := a.Put(ctx, "q/2", bytes.NewReader([]byte("fills it")), Info{Size: -1}); err != nil {
					t.Errorf("a's store: %v", err)
				}
			})
			if err := tc.change(b, tc.src, tc.dst); !errors.Is(err, ErrQuota) || !*raced {
				t.Fatalf("into a quota filled meanwhile on another node: %v (raced: %v), want ErrQuota", err, *raced)
			}
			if u := usage(t, a)[0]; u.UsedObjects != 2 {
				t.Errorf("usage %d objects after the refused change, want 2", u.UsedObjects)
			}
			if _, err := a.Stat(ctx, tc.obj); err != nil {
				t.Errorf("the source after a refused change: %v", err)
			}
			if _, err := a.Stat(ctx, tc.dst+tc.obj[len(tc.src):]); !errors.Is(err, ErrNotFound) {
				t.Errorf("the refused change's object at the destination: %v", err)
			}
		})
	}
}

// TestSharedSpoolSweptAfterAnUncleanStop: a node that did not stop cleanly
// removes from its spool the blobs no object names (stores that never
// committed) and keeps those an object names.
func TestSharedSpoolSweptAfterAnUncleanStop(t *testing.T) {
	ctx := context.Background()
	indexURL := pgtest.Database(t)
	remote, err := NewDirBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	dir := t.TempDir()
	s, err := Open(dir, Options{Remote: remote, Through: true, IndexURL: indexURL})
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Put(ctx, "acct/vm.mp3", bytes.NewReader([]byte("named")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// As a crash leaves them: the named blob still spooled, a blob of a store
	// that never committed, and no clean-shutdown marker.
	stray := newVersion()
	for _, blob := range []string{o.Blob, stray} {
		if err := os.WriteFile(filepath.Join(dir, blobPath(blob)), []byte("bytes"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "clean-shutdown")); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{Remote: remote, Through: true, IndexURL: indexURL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, blobPath(stray))); !os.IsNotExist(err) {
		t.Errorf("the blob of a store that never committed is still spooled: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, blobPath(o.Blob))); err != nil {
		t.Errorf("the spooled blob of a stored object was removed: %v", err)
	}
}
