package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
)

// BenchmarkPutGrowth measures 100 KiB stores into a folder that already
// holds many objects, beside the same stores into an empty store: the issue
// is whether the rate declines as the store grows (target: within 10 %).
// The objects already there are made fast, not by a million stores: their
// index rows are written in large transactions and their sidecars are hard
// links to one sidecar, so the folder on disk is as large as the index says.
//
// ATTACHD_BENCH_PREFILL sets how many (default 100 000; bench/growth.sh
// runs 1 000 000), ATTACHD_BENCH_DIR where the data directory goes (default
// the test's temporary folder; bench/growth.sh uses a tmpfs).
func BenchmarkPutGrowth(b *testing.B) {
	n := 100_000
	if v := os.Getenv("ATTACHD_BENCH_PREFILL"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			b.Fatalf("ATTACHD_BENCH_PREFILL=%q: want a count", v)
		}
	}
	for _, prefill := range []int{0, n} {
		b.Run(fmt.Sprintf("prefill=%d", prefill), func(b *testing.B) {
			dir := b.TempDir()
			if d := os.Getenv("ATTACHD_BENCH_DIR"); d != "" {
				var err error
				if dir, err = os.MkdirTemp(d, "growth-"); err != nil {
					b.Fatal(err)
				}
				defer os.RemoveAll(dir)
			}
			s := openTest(b, dir)
			defer s.Close()
			prefillStore(b, s, "bench", prefill)
			putParallel(b, s, "bench")
		})
	}
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

// putParallel stores b.N 100 KiB objects into folder, 8 at a time, and
// reports the rate.
func putParallel(b *testing.B, s *Store, folder string) {
	ctx := context.Background()
	body := randBytes(100 << 10)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(4) // 8 uploads in flight on 2 cores, as wrk -c8 does
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("%s/new-%d", folder, n.Add(1))
			if _, err := s.Put(ctx, key, bytes.NewReader(body), Info{Size: -1}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
}
