package dav

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/store"
)

// BenchmarkPropfind10k measures PROPFIND Depth 1 (allprop) on a collection
// of 10 000 objects, the PROPFIND target. Run it with TMPDIR on a
// tmpfs: filling the store fsyncs every object.
func BenchmarkPropfind10k(b *testing.B) { benchmarkPropfind(b, false) }

// BenchmarkPropfind10kCold is BenchmarkPropfind10k with the listing cache
// emptied before every request by a commit to the index.
func BenchmarkPropfind10kCold(b *testing.B) { benchmarkPropfind(b, true) }

func benchmarkPropfind(b *testing.B, cold bool) {
	ts := newTestServer(b, Options{ByDate: true, HideJunk: JunkHide})
	for i := range 10000 {
		ts.put(fmt.Sprintf("propfind-10000/f-%06d.bin", i), strings.Repeat("x", 1024), store.Info{ContentType: "application/octet-stream"})
	}
	req, _ := http.NewRequest("PROPFIND", ts.srv.URL+"/dav/propfind-10000/", nil)
	req.Header.Set("Depth", "1")
	b.ResetTimer()
	for b.Loop() {
		if cold {
			b.StopTimer()
			ts.put("other/touch", "x", store.Info{})
			b.StartTimer()
		}
		res, err := ts.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 207 {
			b.Fatalf("status %d", res.StatusCode)
		}
		b.SetBytes(n)
	}
}
