package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

// BenchmarkPutGrowth measures 100 KiB stores, 8 at a time, into a folder
// that already holds many objects, beside the same stores into an empty
// store, alternating between the two every 500 stores so that both see the
// same machine: the issue is whether the rate declines as the store grows
// (target: the full store within 10 % of the empty one). It reports each
// rate and full/empty-% (100 is no decline). The objects already there are
// made fast, not by a million stores: their index rows are written in large
// transactions and their sidecars are hard links to one sidecar, so the
// folder on disk is as large as the index says.
//
// ATTACHD_BENCH_PREFILL sets how many (default 100 000; bench/growth.sh
// runs 1 000 000), ATTACHD_BENCH_DIR where the data directories go (default
// the system's temporary folder; bench/growth.sh uses a tmpfs).
func BenchmarkPutGrowth(b *testing.B) {
	benchGrowth(b, newKey, false)
}

func newKey(folder string, _ int64) string { return fmt.Sprintf("%s/new-%s", folder, newVersion()) }

// BenchmarkOverwriteGrowth is BenchmarkPutGrowth for stores that replace
// one of 64 objects each time: a replaced blob is removed only if no other
// object names it, and that question must not cost more as the store grows.
func BenchmarkOverwriteGrowth(b *testing.B) {
	benchGrowth(b, func(folder string, i int64) string {
		return fmt.Sprintf("%s/over-%02d", folder, i%64)
	}, false)
}

// BenchmarkQuotaGrowth is BenchmarkPutGrowth with a quota on the folder:
// each store checks the folder's usage, which must not cost more as the
// folder grows.
func BenchmarkQuotaGrowth(b *testing.B) {
	benchGrowth(b, newKey, true)
}

// benchGrowth runs b.N stores of 100 KiB into two stores, an empty one and
// one prefilled, 500 at a time in turn, under the keys key gives, with or
// without a quota on the folder, and reports each rate and full/empty-%.
func benchGrowth(b *testing.B, key func(folder string, i int64) string, quota bool) {
	n := 100_000
	if v := os.Getenv("ATTACHD_BENCH_PREFILL"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			b.Fatalf("ATTACHD_BENCH_PREFILL=%q: want a count", v)
		}
	}
	empty, full := growthStore(b, 0, quota), growthStore(b, n, quota)
	body := randBytes(100 << 10)
	b.SetBytes(int64(len(body)))
	var spent [2]time.Duration
	var done [2]int
	b.ResetTimer()
	for i := 0; done[0]+done[1] < b.N; i++ {
		k := min(500, b.N-done[0]-done[1])
		start := time.Now()
		putParallel(b, []*Store{empty, full}[i%2], "bench", k, body, key)
		spent[i%2] += time.Since(start)
		done[i%2] += k
	}
	if done[1] > 0 {
		e, f := float64(done[0])/spent[0].Seconds(), float64(done[1])/spent[1].Seconds()
		b.ReportMetric(e, "empty-puts/s")
		b.ReportMetric(f, "full-puts/s")
		b.ReportMetric(100*f/e, "full/empty-%")
	}
}

// growthStores are the stores of the growth benchmarks, by prefill and
// quota, made once per process: each benchmark runs more than once (-count,
// and b.N=1 first), and a million objects take minutes to make. TestMain
// closes them.
var growthStores = map[growthKind]*Store{}

type growthKind struct {
	prefill int
	quota   bool // a quota on the folder "bench", too large to refuse anything
}

func growthStore(b *testing.B, prefill int, quota bool) *Store {
	k := growthKind{prefill, quota}
	if s, ok := growthStores[k]; ok {
		return s
	}
	dir, err := os.MkdirTemp(os.Getenv("ATTACHD_BENCH_DIR"), "growth-")
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{MaxSize: 64 << 20}
	if quota {
		opts.Quotas = []Quota{{Name: "/bench", Prefix: "bench", Bytes: 1 << 60}}
	}
	s, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	prefillStore(b, s, "bench", prefill)
	growthStores[k] = s
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range growthStores {
		s.Close()
		os.RemoveAll(s.Dir())
	}
	os.Exit(code)
}

// prefillStore puts n objects into folder, as if stored there: index rows
// and sidecars (hard links to one sidecar naming one blob).
func prefillStore(b *testing.B, s *Store, folder string, n int) {
	ctx := context.Background()
	seed, err := s.Put(ctx, folder+"/seed", bytes.NewReader([]byte("seed")), Info{Size: -1})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 20_000
	for i := 0; i < n; i += batch {
		err := s.idx.Update(ctx, func(tx index.Tx) error {
			for j := i; j < i+batch && j < n; j++ {
				o := seed
				o.Key = fmt.Sprintf("%s/old-%07d", folder, j)
				if err := s.root.Link("objects/"+seed.Key, "objects/"+o.Key); err != nil {
					return err
				}
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
}

// putParallel stores n objects of body into folder, 8 at a time, the i-th
// under key(folder, i).
func putParallel(b *testing.B, s *Store, folder string, n int, body []byte, key func(string, int64) string) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := s.Put(ctx, key(folder, i), bytes.NewReader(body), Info{Size: -1}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestAbsent: a key is absent only when neither an object nor a folder is
// there, and never while a change is in doubt (the tree may be ahead of
// the index).
func TestAbsent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	if _, err := s.Put(ctx, "a/b/x", bytes.NewReader([]byte("x")), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"a/b/x": false, "a/b": false, "a": false, "a/b/y": true, "c/d": true, "": false} {
		if got := s.Absent(key); got != want {
			t.Errorf("Absent(%q) = %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]bool{"a/b": true, "a": true, "": true, "a/c": false, "a/b/x": false} {
		if got, err := s.DirExists(ctx, key); err != nil || got != want {
			t.Errorf("DirExists(%q) = %v, %v; want %v", key, got, err, want)
		}
	}
	s.inDoubt.Store(true)
	defer s.inDoubt.Store(false)
	if s.Absent("a/b/y") {
		t.Error("Absent answers from the tree while a change is in doubt")
	}
}
