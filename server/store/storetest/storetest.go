// Package storetest is the conformance suite for store.Backend: every
// backend (local folder, memory, and each storage plugin through its real
// binary) must pass Run.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

// ChunkSize is the plugins' default chunk size: sizes around it catch
// off-by-one errors in chunked streaming.
const ChunkSize = 256 << 10

// BigSize is the size of the large-blob test: 200 MiB when ATTACHD_BIG=1 or
// CI=true, else 20 MiB to keep local runs quick.
func BigSize() int64 {
	if os.Getenv("ATTACHD_BIG") == "1" || os.Getenv("CI") == "true" {
		return 200 << 20
	}
	return 20 << 20
}

// Run runs the suite. Each test works under its own random name prefix, so
// newBackend may return one shared backend, and a backend that already holds
// blobs is fine.
func Run(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	root := "storetest-" + rand.Text()[:10]
	tests := []struct {
		name string
		fn   func(t *testing.T, b store.Backend, prefix string)
	}{
		{"Sizes", testSizes},
		{"SmallWrites", testSmallWrites},
		{"Big", testBig},
		{"Ranges", testRanges},
		{"Missing", testMissing},
		{"Abort", testAbort},
		{"AbortKeepsPrevious", testAbortKeepsPrevious},
		{"Dropped", testDropped},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"List", testList},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newBackend(t), root+"/"+tc.name+"/")
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

// put writes data as one blob and commits it.
func put(t *testing.T, b store.Backend, name string, data []byte) {
	t.Helper()
	w, err := b.Create(ctx(t), name, int64(len(data)))
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		t.Fatalf("Write %s: %v", name, err)
	}
	if err := w.Commit(ctx(t)); err != nil {
		t.Fatalf("Commit %s: %v", name, err)
	}
}

// get reads n bytes from off.
func get(t *testing.T, b store.Backend, name string, off, n int64) []byte {
	t.Helper()
	r, err := b.Open(ctx(t), name, off, n)
	if err != nil {
		t.Fatalf("Open %s [%d,%d): %v", name, off, n, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s [%d,%d): %v", name, off, n, err)
	}
	return data
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func wantMissing(t *testing.T, b store.Backend, name string) {
	t.Helper()
	if _, err := b.Stat(ctx(t), name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat %s: got %v, want ErrNotFound", name, err)
	}
}

func names(t *testing.T, b store.Backend, prefix string) []string {
	t.Helper()
	blobs, next, err := b.List(ctx(t), prefix, "", 0)
	if err != nil {
		t.Fatalf("List %s: %v", prefix, err)
	}
	if next != "" {
		t.Errorf("List %s with no limit: next cursor %q, want none", prefix, next)
	}
	var out []string
	for _, bi := range blobs {
		out = append(out, bi.Name)
	}
	return out
}

func testSizes(t *testing.T, b store.Backend, prefix string) {
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize + 1} {
		name := fmt.Sprintf("%s%d", prefix, n)
		data := random(n)
		put(t, b, name, data)
		info, err := b.Stat(ctx(t), name)
		if err != nil || info.Size != int64(n) || info.Name != name {
			t.Errorf("Stat %s: got %+v, %v; want size %d", name, info, err, n)
		}
		if got := get(t, b, name, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: read back %d different bytes", n, len(got))
		}
	}
}

// testSmallWrites writes in odd-sized pieces, as an HTTP body arrives.
func testSmallWrites(t *testing.T, b store.Backend, prefix string) {
	data := random(3*ChunkSize + 777)
	w, err := b.Create(ctx(t), prefix+"blob", -1)
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		k := min(len(p), 1+mrand.IntN(70000))
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, prefix+"blob", 0, -1); !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, not the %d written", len(got), len(data))
	}
}

// testBig streams a large blob in and out without holding it in memory,
// comparing SHA-256 digests, and logs the throughput.
func testBig(t *testing.T, b store.Backend, prefix string) {
	size := BigSize()
	name := prefix + "big"
	src := io.LimitReader(mrand.NewChaCha8([32]byte{1, 2, 3}), size)
	hw := sha256.New()
	w, err := b.Create(ctx(t), name, size)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := io.CopyBuffer(io.MultiWriter(w, hw), src, make([]byte, 1<<20)); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	if info, err := b.Stat(ctx(t), name); err != nil || info.Size != size {
		t.Fatalf("Stat: %+v, %v; want size %d", info, err, size)
	}
	start = time.Now()
	r, err := b.Open(ctx(t), name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	hr := sha256.New()
	n, err := io.CopyBuffer(hr, r, make([]byte, 1<<20))
	r.Close()
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	down := time.Since(start)
	if !bytes.Equal(hr.Sum(nil), hw.Sum(nil)) {
		t.Fatal("SHA-256 of the blob read back differs from what was written")
	}
	mib := float64(size) / (1 << 20)
	t.Logf("%.0f MiB: write %.0f MiB/s, read %.0f MiB/s", mib, mib/up.Seconds(), mib/down.Seconds())
	if err := b.Delete(ctx(t), name); err != nil {
		t.Error(err)
	}
}

func testRanges(t *testing.T, b store.Backend, prefix string) {
	data := random(1000)
	name := prefix + "blob"
	put(t, b, name, data)
	for _, r := range []struct{ off, n, from, to int64 }{
		{0, -1, 0, 1000},
		{0, 0, 0, 0},
		{0, 1, 0, 1},
		{10, 20, 10, 30},
		{999, 1, 999, 1000},
		{990, 20, 990, 1000},   // runs past the end
		{1000, -1, 1000, 1000}, // at the end
		{1000, 5, 1000, 1000},
		{5000, -1, 1000, 1000}, // past the end
		{5000, 10, 1000, 1000},
	} {
		if got := get(t, b, name, r.off, r.n); !bytes.Equal(got, data[r.from:r.to]) {
			t.Errorf("Open(%d, %d): got %d bytes, want bytes [%d,%d)", r.off, r.n, len(got), r.from, r.to)
		}
	}
	empty := prefix + "empty"
	put(t, b, empty, nil)
	if got := get(t, b, empty, 0, -1); len(got) != 0 {
		t.Errorf("empty blob: read %d bytes", len(got))
	}
	if got := get(t, b, empty, 10, 10); len(got) != 0 {
		t.Errorf("empty blob from 10: read %d bytes", len(got))
	}
}

func testMissing(t *testing.T, b store.Backend, prefix string) {
	name := prefix + "nothing"
	wantMissing(t, b, name)
	if r, err := b.Open(ctx(t), name, 0, -1); !errors.Is(err, store.ErrNotFound) {
		if r != nil {
			r.Close()
		}
		t.Errorf("Open missing: got %v, want ErrNotFound", err)
	}
	if got := names(t, b, prefix); len(got) != 0 {
		t.Errorf("List of an empty prefix: %q", got)
	}
}

func testAbort(t *testing.T, b store.Backend, prefix string) {
	name := prefix + "aborted"
	w, err := b.Create(ctx(t), name, 3*ChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(random(ChunkSize + 10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	wantMissing(t, b, name)
	if got := names(t, b, prefix); len(got) != 0 {
		t.Errorf("List after abort: %q", got)
	}
}

func testAbortKeepsPrevious(t *testing.T, b store.Backend, prefix string) {
	name := prefix + "blob"
	old := random(ChunkSize + 3)
	put(t, b, name, old)
	w, err := b.Create(ctx(t), name, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(random(2 * ChunkSize)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if got := get(t, b, name, 0, -1); !bytes.Equal(got, old) {
		t.Errorf("after an aborted overwrite: read %d bytes, not the previous %d", len(got), len(old))
	}
	if got := names(t, b, prefix); len(got) != 1 {
		t.Errorf("List after aborted overwrite: %q", got)
	}
}

// testDropped forgets a writer without Commit or Abort, as a handler that
// panicked would.
func testDropped(t *testing.T, b store.Backend, prefix string) {
	name := prefix + "dropped"
	func() {
		w, err := b.Create(ctx(t), name, -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(random(ChunkSize + 1)); err != nil {
			t.Fatal(err)
		}
	}()
	runtime.GC()
	wantMissing(t, b, name)
	if got := names(t, b, prefix); len(got) != 0 {
		t.Errorf("List after a dropped writer: %q", got)
	}
}

func testOverwrite(t *testing.T, b store.Backend, prefix string) {
	name := prefix + "blob"
	put(t, b, name, random(2*ChunkSize))
	second := random(100)
	put(t, b, name, second)
	if got := get(t, b, name, 0, -1); !bytes.Equal(got, second) {
		t.Errorf("after overwrite: read %d bytes, want the second version's %d", len(got), len(second))
	}
	if info, err := b.Stat(ctx(t), name); err != nil || info.Size != 100 {
		t.Errorf("Stat after overwrite: %+v, %v", info, err)
	}
}

func testDelete(t *testing.T, b store.Backend, prefix string) {
	name := prefix + "blob"
	put(t, b, name, []byte("x"))
	if err := b.Delete(ctx(t), name); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, b, name)
	if err := b.Delete(ctx(t), name); err != nil {
		t.Errorf("Delete of a missing blob: %v", err)
	}
	if err := b.Delete(ctx(t), prefix+"never/existed"); err != nil {
		t.Errorf("Delete of a missing blob in a missing folder: %v", err)
	}
}

func testList(t *testing.T, b store.Backend, prefix string) {
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("%sx/%02d", prefix, i)
		put(t, b, name, []byte{byte(i)})
		want = append(want, name)
	}
	put(t, b, prefix+"y/1", []byte("other"))

	var got []string
	cursor, pages := "", 0
	for {
		blobs, next, err := b.List(ctx(t), prefix+"x/", cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(blobs) > 10 {
			t.Fatalf("page of %d blobs, limit 10", len(blobs))
		}
		for _, bi := range blobs {
			got = append(got, bi.Name)
			if bi.Size != 1 {
				t.Errorf("%s: size %d, want 1", bi.Name, bi.Size)
			}
		}
		pages++
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("List never ends")
		}
		cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged List:\n got %q\nwant %q", got, want)
	}
	if pages != 3 {
		t.Errorf("25 blobs by 10 took %d pages, want 3", pages)
	}
	if n := len(names(t, b, prefix)); n != 26 {
		t.Errorf("List %s: %d blobs, want 26", prefix, n)
	}
	// A prefix is a string prefix, not a folder.
	if got := names(t, b, prefix+"x/1"); len(got) != 10 {
		t.Errorf("List %sx/1: %q, want x/10 to x/19", prefix, got)
	}
}

func testConcurrent(t *testing.T, b store.Backend, prefix string) {
	var wg sync.WaitGroup
	data := make([][]byte, 6)
	for i := range data {
		data[i] = random(ChunkSize + 1000*i)
		wg.Go(func() { put(t, b, fmt.Sprintf("%s%d", prefix, i), data[i]) })
	}
	wg.Wait()
	for i := range data {
		wg.Go(func() {
			if got := get(t, b, fmt.Sprintf("%s%d", prefix, i), 0, -1); !bytes.Equal(got, data[i]) {
				t.Errorf("blob %d: read back different bytes", i)
			}
		})
	}
	wg.Wait()
}
