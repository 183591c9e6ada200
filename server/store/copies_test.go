package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index/pg/pgtest"
)

// countingBackend counts the reads a store asks of its backend.
type countingBackend struct {
	Backend
	opens atomic.Int64
}

func (b *countingBackend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	b.opens.Add(1)
	return b.Backend.Open(ctx, name, off, n)
}

func newCountingBackend(t *testing.T, dir string) *countingBackend {
	t.Helper()
	d, err := NewDirBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &countingBackend{Backend: d}
}

// openWithCopies opens a store over remote with a read cache of 8 MiB.
func openWithCopies(t *testing.T, remote Backend, through bool) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{Remote: remote, Through: through, ReadCache: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// copyHeld reports whether the data directory holds a copy of blob in its
// read cache.
func copyHeld(s *Store, blob string) bool {
	_, err := os.Stat(filepath.Join(s.dir, "cache", blob))
	return err == nil
}

// TestReadCacheThrough: with write-through, a store leaves its bytes as a
// copy, so reads on this node do not go to the backend; a copy evicted is
// filled again by the next whole read, and only by a whole read of bytes
// that hash right; deleting or replacing an object removes its copy.
func TestReadCacheThrough(t *testing.T) {
	ctx := context.Background()
	backendDir := t.TempDir()
	remote := newCountingBackend(t, backendDir)
	s := openWithCopies(t, remote, true)
	body := randBytes(200 << 10)
	o, err := s.Put(ctx, "acct/vm.mp3", bytes.NewReader(body), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !copyHeld(s, o.Blob) {
		t.Fatal("the stored bytes were not kept as a copy")
	}
	if _, err := s.root.Stat(blobPath(o.Blob)); !os.IsNotExist(err) {
		t.Fatalf("the spooled bytes are still in the spool: %v", err)
	}
	readsFromBackend := func(want int64, what string) {
		t.Helper()
		if got := remote.opens.Swap(0); got != want {
			t.Fatalf("%s: %d reads from the backend, want %d", what, got, want)
		}
	}
	if !bytes.Equal(readAll(t, s, "acct/vm.mp3"), body) {
		t.Fatal("read back other bytes")
	}
	readsFromBackend(0, "a read after the store")

	// Evicted: the next whole read goes to the backend and fills it again.
	s.copies.Remove(o.Blob)
	if !bytes.Equal(readAll(t, s, "acct/vm.mp3"), body) || !copyHeld(s, o.Blob) {
		t.Fatal("a whole read from the backend left no copy, or read other bytes")
	}
	readsFromBackend(1, "the read that filled the copy")
	readAll(t, s, "acct/vm.mp3")
	readsFromBackend(0, "a read after the fill")

	// A read of part of the blob leaves no copy.
	s.copies.Remove(o.Blob)
	f, _, err := s.Open(ctx, "acct/vm.mp3")
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(1000, io.SeekStart)
	part := make([]byte, 5000)
	if _, err := io.ReadFull(f, part); err != nil || !bytes.Equal(part, body[1000:6000]) {
		t.Fatalf("ranged read: %v", err)
	}
	f.Close()
	if copyHeld(s, o.Blob) {
		t.Fatal("a ranged read left a copy")
	}
	readsFromBackend(1, "the ranged read")

	// Bytes the backend garbled reach the reader but are not kept.
	inBackend := filepath.Join(backendDir, remoteBlob(o.Blob))
	garbled := bytes.Clone(body)
	garbled[len(garbled)/2] ^= 0xff
	if err := os.WriteFile(inBackend, garbled, 0o600); err != nil {
		t.Fatal(err)
	}
	readAll(t, s, "acct/vm.mp3")
	if copyHeld(s, o.Blob) {
		t.Fatal("a copy of garbled bytes was kept")
	}
	os.WriteFile(inBackend, body, 0o600)
	readAll(t, s, "acct/vm.mp3")
	if !copyHeld(s, o.Blob) {
		t.Fatal("no copy after a whole read of the right bytes")
	}

	// Replaced: the old version's copy goes with its blob.
	o2, err := s.Put(ctx, "acct/vm.mp3", bytes.NewReader([]byte("version two")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if copyHeld(s, o.Blob) || !copyHeld(s, o2.Blob) {
		t.Fatalf("after an overwrite: old copy held %v, new copy held %v", copyHeld(s, o.Blob), copyHeld(s, o2.Blob))
	}
	// Deleted: its copy goes at once.
	if err := s.Delete(ctx, "acct/vm.mp3"); err != nil {
		t.Fatal(err)
	}
	if copyHeld(s, o2.Blob) {
		t.Fatal("a deleted object's copy is still held")
	}
	if st, _ := s.ReadCacheStats(); st.Copies != 0 || st.Hits != 2 || st.Misses != 4 || st.Fills != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestReadCacheSpool: in spool mode the replicator keeps the spooled bytes
// as a copy once the backend holds them.
func TestReadCacheSpool(t *testing.T) {
	ctx := context.Background()
	remote := newCountingBackend(t, t.TempDir())
	s := openWithCopies(t, remote, false)
	body := randBytes(100 << 10)
	o, err := s.Put(ctx, "acct/vm.mp3", bytes.NewReader(body), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Replicate(rctx); close(done) }()
	defer func() { stop(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); !copyHeld(s, o.Blob); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replicated bytes were not kept as a copy")
		}
	}
	if _, err := s.root.Stat(blobPath(o.Blob)); !os.IsNotExist(err) {
		t.Fatalf("the replicated bytes are still in the spool: %v", err)
	}
	if !bytes.Equal(readAll(t, s, "acct/vm.mp3"), body) || remote.opens.Load() != 0 {
		t.Fatalf("read from the copy: %d reads from the backend", remote.opens.Load())
	}
	// Deleted: the replicator removes the copy with the blob.
	if err := s.Delete(ctx, "acct/vm.mp3"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); copyHeld(s, o.Blob); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a deleted object's copy is still held after replication")
		}
	}
}

// TestReadCacheTurnedOff: a store opened without a read cache removes the
// copies an earlier configuration kept, which nothing would remove when
// their objects are deleted.
func TestReadCacheTurnedOff(t *testing.T) {
	dir := t.TempDir()
	remote := newCountingBackend(t, t.TempDir())
	s, err := Open(dir, Options{Remote: remote, Through: true, ReadCache: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "acct/vm.mp3", 1000); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if des, _ := os.ReadDir(filepath.Join(dir, "cache")); len(des) != 2 {
		t.Fatalf("cache holds %d entries, want the copy and the state", len(des))
	}
	s, err = Open(dir, Options{Remote: remote, Through: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "cache")); !os.IsNotExist(err) {
		t.Fatalf("the cache of the earlier configuration is still there: %v", err)
	}
}

// TestSharedReadCacheSweep: in a cluster, a node's copy of a blob that
// another node deleted goes at the sweep; copies of live blobs stay.
func TestSharedReadCacheSweep(t *testing.T) {
	ctx := context.Background()
	indexURL := pgtest.Database(t)
	backend := t.TempDir()
	var nodes [2]*Store
	for i := range nodes {
		s, err := Open(t.TempDir(), Options{Remote: newCountingBackend(t, backend), Through: true, IndexURL: indexURL, ReadCache: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes[i] = s
	}
	a, b := nodes[0], nodes[1]
	var objs []Object
	for _, key := range []string{"acct/kept.mp3", "acct/deleted.mp3"} {
		o, err := a.Put(ctx, key, bytes.NewReader(randBytes(70<<10)), Info{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, b, key) // b fills its copy
		if !copyHeld(b, o.Blob) {
			t.Fatalf("b keeps no copy of %s after reading it whole", key)
		}
		objs = append(objs, o)
	}
	if n, err := b.sweepCopies(ctx); err != nil || n != 0 {
		t.Fatalf("sweep with every blob named removed %d: %v", n, err)
	}
	if err := a.Delete(ctx, "acct/deleted.mp3"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.sweepCopies(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after a delete on the other node removed %d: %v", n, err)
	}
	if !copyHeld(b, objs[0].Blob) || copyHeld(b, objs[1].Blob) {
		t.Fatalf("after the sweep: live copy held %v, deleted copy held %v", copyHeld(b, objs[0].Blob), copyHeld(b, objs[1].Blob))
	}
}

// BenchmarkRemoteRead reads a 100 KiB object whose bytes a backend holds
// (a directory: the cost of the backend itself is a local file's): with no
// read cache, through the cache filling a copy on every read (the cost a
// miss adds), and from the copy.
func BenchmarkRemoteRead(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cache int64
		evict bool
	}{{"no-cache", 0, false}, {"miss-and-fill", 64 << 20, true}, {"hit", 64 << 20, false}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			remote, err := NewDirBackend(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer remote.Close()
			s, err := Open(b.TempDir(), Options{Remote: remote, Through: true, ReadCache: tc.cache})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			o, err := s.Put(ctx, "acct/vm.mp3", bytes.NewReader(randBytes(100<<10)), Info{Size: -1})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(o.Size)
			b.ResetTimer()
			for range b.N {
				if tc.evict {
					s.copies.Remove(o.Blob)
				}
				f, _, err := s.Open(ctx, "acct/vm.mp3")
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, f); err != nil || n != o.Size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
				f.Close()
			}
		})
	}
}
