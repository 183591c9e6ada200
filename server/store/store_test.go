package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/attachd/attachd/server/index"
)

func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{MaxSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func readAll(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	f, _, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %q: %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPutOpenOverwriteDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	v1, v2 := randBytes(1<<20), randBytes(1000)
	o, err := s.Put(ctx, "p/A/D/N.mp3", bytes.NewReader(v1), Info{ContentType: "audio/mpeg", Size: int64(len(v1)), Meta: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if o.SHA256 != sum(v1) || o.Size != int64(len(v1)) || o.ETag() != `"`+sum(v1)+`"` {
		t.Fatalf("object = %+v", o)
	}
	if got := readAll(t, s, "p/A/D/N.mp3"); !bytes.Equal(got, v1) {
		t.Fatal("bytes differ")
	}
	if _, err := s.Put(ctx, "p/A/D/N.mp3", bytes.NewReader(v2), Info{ContentType: "audio/mpeg", Size: -1}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "p/A/D/N.mp3"); !bytes.Equal(got, v2) {
		t.Fatal("overwrite not seen")
	}
	if n := countBlobs(t, dir); n != 1 {
		t.Fatalf("%d blobs after overwrite, want 1", n)
	}
	if err := s.Delete(ctx, "p/A/D/N.mp3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "p/A/D/N.mp3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat after delete: %v", err)
	}
	if n := countBlobs(t, dir); n != 0 {
		t.Fatalf("%d blobs after delete, want 0", n)
	}
}

func countBlobs(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "blobs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestFailedUploadsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	old := randBytes(5000)
	if _, err := s.Put(ctx, "k", bytes.NewReader(old), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    io.Reader
		size int64
		want error
	}{
		{"short body", bytes.NewReader(randBytes(100)), 200, ErrShortBody},
		{"long body", bytes.NewReader(randBytes(300)), 200, ErrShortBody},
		{"read error", iotest.TimeoutReader(bytes.NewReader(randBytes(100000))), -1, iotest.ErrTimeout},
		{"too large", io.LimitReader(zeroReader{}, 65<<20), -1, ErrTooLarge},
	}
	for _, c := range cases {
		if _, err := s.Put(ctx, "k", c.r, Info{Size: c.size}); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if got := readAll(t, s, "k"); !bytes.Equal(got, old) {
			t.Errorf("%s: previous version damaged", c.name)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp holds %d files", len(entries))
	}
	if n := countBlobs(t, dir); n != 1 {
		t.Errorf("%d blobs, want 1", n)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestFileFolderConflict(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	if _, err := s.Put(ctx, "a/b", bytes.NewReader([]byte("x")), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a/b/c", bytes.NewReader([]byte("y")), Info{Size: -1}); !errors.Is(err, ErrConflict) {
		t.Errorf("object below an object: %v, want ErrConflict", err)
	}
	if _, err := s.Put(ctx, "a", bytes.NewReader([]byte("y")), Info{Size: -1}); !errors.Is(err, ErrConflict) {
		t.Errorf("object over a folder: %v, want ErrConflict", err)
	}
}

// TestOverwriteKeepsCreated: an overwrite keeps the creation time of the
// version it replaces, in the index and in what Put returns.
func TestOverwriteKeepsCreated(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	v1, err := s.Put(ctx, "a/b", bytes.NewReader([]byte("one")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	v2, err := s.Put(ctx, "a/b", bytes.NewReader([]byte("two")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Created.Equal(v1.Created) || !v2.Updated.After(v1.Updated) {
		t.Errorf("overwrite returned created %v updated %v; want created %v, updated after %v", v2.Created, v2.Updated, v1.Created, v1.Updated)
	}
	if o, err := s.Stat(ctx, "a/b"); err != nil || !o.Created.Equal(v1.Created) || o.Blob != v2.Blob {
		t.Errorf("stat after the overwrite = %+v, %v", o, err)
	}
}

func TestLookups(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	put := func(key, media string) {
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte(key)), Info{Size: -1, MediaID: media, DocID: media}); err != nil {
			t.Fatal(err)
		}
	}
	put("p/A/D/N.mp3", "D")
	put("p/A/E/N.mp3", "E")
	if o, err := s.LongestPrefix(ctx, "p/A/D/N.mp3/A/D/N.mp3"); err != nil || o.Key != "p/A/D/N.mp3" {
		t.Errorf("LongestPrefix = %q, %v", o.Key, err)
	}
	if _, err := s.LongestPrefix(ctx, "p/A/D/N.mp3x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LongestPrefix off a segment boundary: %v", err)
	}
	if o, err := s.FindByID(ctx, "E", "p"); err != nil || o.Key != "p/A/E/N.mp3" {
		t.Errorf("FindByID = %q, %v", o.Key, err)
	}
}

func TestTreeOperations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	for _, k := range []string{"a/x/1", "a/x/2", "a/y", "b"} {
		if _, err := s.Put(ctx, k, bytes.NewReader([]byte(k)), Info{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(dir string) (out []string) {
		es, err := s.List(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	if got := names("a"); len(got) != 2 || got[0] != "x" || got[1] != "y" {
		t.Fatalf("List(a) = %v", got)
	}
	if err := s.Mkdir(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Mkdir(ctx, "c"); !errors.Is(err, ErrExists) {
		t.Fatalf("Mkdir twice: %v", err)
	}
	if err := s.Mkdir(ctx, "nope/d"); !errors.Is(err, ErrConflict) {
		t.Fatalf("Mkdir without parent: %v", err)
	}
	if err := s.Copy(ctx, "a", "c/a", false); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "c/a/x/2"); string(got) != "a/x/2" {
		t.Fatalf("copied bytes %q", got)
	}
	if err := s.Move(ctx, "a", "m", false); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "m/x/1"); string(got) != "a/x/1" {
		t.Fatalf("moved bytes %q", got)
	}
	if _, err := s.Stat(ctx, "a/x/1"); !errors.Is(err, ErrNotFound) {
		t.Fatal("source still there after move")
	}
	if err := s.Move(ctx, "b", "m/y", false); !errors.Is(err, ErrExists) {
		t.Fatalf("move onto existing without overwrite: %v", err)
	}
	if err := s.Move(ctx, "b", "m/y", true); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "m/y"); string(got) != "b" {
		t.Fatalf("overwritten bytes %q", got)
	}
	if err := s.RemoveAll(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := names(""); len(got) != 1 || got[0] != "m" {
		t.Fatalf("root after RemoveAll = %v", got)
	}
	// Copies share bytes by hard link; removing one leaves the other.
	if got := readAll(t, s, "m/x/2"); string(got) != "a/x/2" {
		t.Fatalf("bytes after removing the copy: %q", got)
	}
}

func TestReindexRestoresEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	want := map[string]Object{}
	for _, k := range []string{"p/A/D/N.mp3", "p/é/x y+z", "q%2Fr/s"} {
		o, err := s.Put(ctx, k, bytes.NewReader(randBytes(3000)), Info{Size: -1, ContentType: "audio/wav", DocID: "D", MediaID: "M", Meta: []byte(`{"document":{"id":"D"}}`)})
		if err != nil {
			t.Fatal(err)
		}
		want[k] = o
	}
	if err := s.Mkdir(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, f := range []string{"index.db", "index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	// A blob nobody names, as a crash between blob and sidecar leaves.
	os.WriteFile(filepath.Join(dir, "blobs", "00", "00orphan"), []byte("x"), 0o640)
	n, err := Reindex(ctx, dir, Options{})
	if err != nil || n != len(want) {
		t.Fatalf("Reindex = %d, %v", n, err)
	}
	s = openTest(t, dir)
	defer s.Close()
	for k, w := range want {
		o, err := s.Stat(ctx, k)
		if err != nil {
			t.Fatalf("%q lost: %v", k, err)
		}
		if o.SHA256 != w.SHA256 || o.ContentType != w.ContentType || o.DocID != "D" || string(o.Meta) != string(w.Meta) || !o.Created.Equal(w.Created) {
			t.Errorf("%q: got %+v, want %+v", k, o, w)
		}
	}
	if _, err := s.StatDir(ctx, "empty"); err != nil {
		t.Errorf("empty folder lost: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "00", "00orphan")); !os.IsNotExist(err) {
		t.Error("orphan blob kept")
	}
}

// TestUncleanStopReconciles simulates a crash between a sidecar's rename and
// its index row: the restart must show the committed object.
func TestUncleanStopReconciles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	o, err := s.Put(ctx, "k", bytes.NewReader([]byte("v1")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.idx.Update(ctx, func(tx index.Tx) error { return tx.ClearObjects() }); err != nil {
		t.Fatal(err)
	}
	s.idx.Close()
	s.idx = nil
	s.Close() // no clean-shutdown marker: the index was not closed by Close
	os.Remove(filepath.Join(dir, "clean-shutdown"))
	s = openTest(t, dir)
	defer s.Close()
	if got, err := s.Stat(ctx, "k"); err != nil || got.SHA256 != o.SHA256 {
		t.Fatalf("after unclean restart: %+v, %v", got, err)
	}
}

func TestOneProcessPerDataDir(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second Open of the same data directory succeeded")
	}
}

// TestConcurrentOverwrites checks that readers only ever see whole versions.
func TestConcurrentOverwrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	versions := map[string]bool{}
	var bodies [][]byte
	for range 8 {
		b := randBytes(256 << 10)
		bodies = append(bodies, b)
		versions[sum(b)] = true
	}
	if _, err := s.Put(ctx, "k", bytes.NewReader(bodies[0]), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				b := bodies[(i+j)%len(bodies)]
				if _, err := s.Put(ctx, "k", bytes.NewReader(b), Info{Size: -1}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			o, _ := s.Stat(ctx, "k")
			if got := readAll(t, s, "k"); sum(got) != o.SHA256 {
				t.Fatal("final bytes do not match the index")
			}
			return
		default:
		}
		f, o, err := s.Open(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if !versions[sum(b)] || sum(b) != o.SHA256 {
			t.Fatal("reader saw a partial or mismatched version")
		}
	}
}

// TestMemoryIndependentOfSize stores 256 MiB and checks the heap stays small.
func TestMemoryIndependentOfSize(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 256 MiB")
	}
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	s.maxSize = 0
	defer s.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := s.Put(ctx, "big", io.LimitReader(zeroReader{}, 256<<20), Info{Size: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("allocated %d MiB to store 256 MiB", grew>>20)
	}
}

func BenchmarkPut100KiB(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, b.TempDir())
	defer s.Close()
	body := randBytes(100 << 10)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Put(ctx, "bench/"+hex.EncodeToString([]byte{byte(i >> 16), byte(i >> 8), byte(i)}), bytes.NewReader(body), Info{Size: -1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut100KiBParallelNoFsync is BenchmarkPut100KiBParallel with
// fsync turned off: the difference is what durability costs on this disk.
func BenchmarkPut100KiBParallelNoFsync(b *testing.B) {
	fsync = func(*os.File) error { return nil }
	defer func() { fsync = (*os.File).Sync }()
	BenchmarkPut100KiBParallel(b)
}

func BenchmarkPut100KiBParallel(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, b.TempDir())
	defer s.Close()
	body := randBytes(100 << 10)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(4) // 8 uploads in flight on 2 cores, as wrk -c8 does
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("bench/%d", n.Add(1))
			if _, err := s.Put(ctx, key, bytes.NewReader(body), Info{Size: -1}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
