package main

// The tests run against a real MinIO: start one with
//
//	.ci/minio.sh start /tmp/minio && . /tmp/minio/env
//
// which exports ATTACHD_TEST_S3_ENDPOINT, ATTACHD_TEST_S3_ACCESS_KEY and
// ATTACHD_TEST_S3_SECRET_KEY. Without them the tests fail, except under
// -short, where they are skipped. Each test uses a fresh bucket.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/plugins/internal/plugintest"
	"github.com/attachd/attachd/plugins/sdk"
	"github.com/attachd/attachd/server/store/storetest"
)

var binary string

func TestMain(m *testing.M) { plugintest.Main(m, "s3", &binary) }

type minioEnv struct{ endpoint, accessKey, secretKey string }

// needMinIO returns the MinIO of .ci/minio.sh, failing the test when it is
// not set up (skipping it under -short).
func needMinIO(t *testing.T) minioEnv {
	t.Helper()
	e := minioEnv{os.Getenv("ATTACHD_TEST_S3_ENDPOINT"), os.Getenv("ATTACHD_TEST_S3_ACCESS_KEY"), os.Getenv("ATTACHD_TEST_S3_SECRET_KEY")}
	if e.endpoint == "" || e.accessKey == "" || e.secretKey == "" {
		msg := "ATTACHD_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY are not set: run `.ci/minio.sh start /tmp/minio && . /tmp/minio/env` (test.sh does)"
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return e
}

func freshBucket() string { return "attachd-test-" + strings.ToLower(rand.Text()[:10]) }

// tables returns the plugin's config and secrets for the MinIO, with a
// fresh bucket; extra keys are added to config.
func (e minioEnv) tables(bucket string, extra map[string]any) tables {
	cfg := map[string]any{"endpoint": e.endpoint, "bucket": bucket, "access_key_id": e.accessKey, "path_style": true}
	for k, v := range extra {
		cfg[k] = v
	}
	return tables{cfg, map[string]any{"secret_access_key": e.secretKey}}
}

// tables are a plugin's config and secrets tables.
type tables struct{ cfg, secrets map[string]any }

// inProcess configures the backend the plugin binary serves, in this
// process, as the SDK would.
func inProcess(t *testing.T, tb tables) *backend {
	t.Helper()
	c, err := sdk.NewConfig(tb.cfg, tb.secrets)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{}
	if err := b.Configure(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return b
}

// viaHost starts the real binary through attachd's plugin host and returns
// its backend, the plugin's pid and everything the host logged.
func viaHost(t *testing.T, tb tables) (blob.Backend, int, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, host.FilePrefix+"s3")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	pin := host.Plugin{Config: tb.cfg, Secrets: tb.secrets}
	if pin.SHA256, err = host.HashFile(dst); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{t: t}
	m, err := host.New(host.Config{
		Dir:          dir,
		Plugins:      map[string]host.Plugin{"s3": pin},
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StartTimeout: 20 * time.Second,
		KillTimeout:  5 * time.Second,
	})
	if m != nil {
		t.Cleanup(func() { m.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Backend("s3")
	if err != nil {
		t.Fatal(err)
	}
	return b, m.Status()[0].PID, logs
}

// syncBuffer keeps the host's log and echoes it to the test log.
type syncBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Log(strings.TrimRight(string(p), "\n"))
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// admin is a client of its own, to look at the bucket behind the plugin.
func (e minioEnv) admin(t *testing.T) *minio.Core {
	t.Helper()
	host, secure, err := parseEndpoint(e.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.NewCore(host, &minio.Options{Creds: credentials.NewStaticV4(e.accessKey, e.secretKey, ""), Secure: secure})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func put(t *testing.T, b blob.Backend, name string, data []byte) {
	t.Helper()
	w, err := b.Create(t.Context(), name, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, b blob.Backend, name string, off, n int64) []byte {
	t.Helper()
	r, err := b.Open(t.Context(), name, off, n)
	if err != nil {
		t.Fatalf("Open %s [%d,%d): %v", name, off, n, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestConformance runs the storage suite through the real binary, started
// by attachd's plugin host, against MinIO.
func TestConformance(t *testing.T) {
	e := needMinIO(t)
	b, pid, _ := viaHost(t, e.tables(freshBucket(), nil))
	storetest.Run(t, func(*testing.T) blob.Backend { return b })
	t.Logf("plugin peak RSS: %s", peakRSS(pid))
}

// TestConformancePrefix runs it again under a prefix, with the smallest
// part size, so that the suite's large blob is a multipart upload of many
// parts.
func TestConformancePrefix(t *testing.T) {
	e := needMinIO(t)
	b, _, _ := viaHost(t, e.tables(freshBucket(), map[string]any{"prefix": "some/prefix", "part_size": minPartSize}))
	storetest.Run(t, func(*testing.T) blob.Backend { return b })
}

// TestBucketCreated: a missing bucket is created on first use, not in
// Configure, and an existing one is used as it is.
func TestBucketCreated(t *testing.T) {
	e := needMinIO(t)
	admin := e.admin(t)
	bucket := freshBucket()
	b := inProcess(t, e.tables(bucket, nil))
	if ok, err := admin.BucketExists(t.Context(), bucket); err != nil || ok {
		t.Fatalf("bucket exists after Configure: %v %v; want it created on first use", ok, err)
	}
	if _, err := b.Stat(t.Context(), "x"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("Stat in a new bucket: %v", err)
	}
	if ok, err := admin.BucketExists(t.Context(), bucket); err != nil || !ok {
		t.Fatalf("bucket not created: %v %v", ok, err)
	}
	put(t, storage{b}, "a/b", []byte("kept"))
	// A second backend (a restarted plugin, another node) finds it.
	b2 := inProcess(t, e.tables(bucket, nil))
	if got := get(t, storage{b2}, "a/b", 0, -1); string(got) != "kept" {
		t.Fatalf("read %q through a second backend", got)
	}
}

// TestWrongSecret: refused credentials give an error naming the key to
// check, and the secret shows neither in errors nor in the host's log.
func TestWrongSecret(t *testing.T) {
	e := needMinIO(t)
	tb := e.tables(freshBucket(), nil)
	wrong := "wrong-" + rand.Text()
	b, _, logs := viaHost(t, tables{tb.cfg, map[string]any{"secret_access_key": wrong}})
	_, err := b.Stat(t.Context(), "x")
	if err == nil || !strings.Contains(err.Error(), "secret_access_key") {
		t.Fatalf("Stat with a wrong secret: %v, want an error naming secret_access_key", err)
	}
	t.Logf("Stat: %v", err)
	w, err := b.Create(t.Context(), "y", 3)
	if err == nil {
		w.Write([]byte("abc"))
		err = w.Commit(t.Context())
	}
	if err == nil || !strings.Contains(err.Error(), "secret_access_key") {
		t.Fatalf("upload with a wrong secret: %v, want an error naming secret_access_key", err)
	}
	if strings.Contains(logs.String(), wrong) || strings.Contains(err.Error(), wrong) {
		t.Fatal("the secret appears in the host's log or an error")
	}

	// A wrong access key id says so too.
	tb.cfg["access_key_id"] = "nobody-" + strings.ToLower(rand.Text()[:6])
	b2 := inProcess(t, tb)
	if _, err := b2.Stat(t.Context(), "x"); err == nil || !strings.Contains(err.Error(), "access_key_id") {
		t.Fatalf("Stat with an unknown key id: %v, want an error naming access_key_id", err)
	}
}

// TestBadEndpoint: nothing listening fails fast, as a transient error
// naming the address; a malformed endpoint is refused by Configure.
func TestBadEndpoint(t *testing.T) {
	e := needMinIO(t)
	b := inProcess(t, e.tables(freshBucket(), map[string]any{"endpoint": "http://127.0.0.1:9"})) // Configure does not connect
	start := time.Now()
	_, err := b.Stat(t.Context(), "x")
	took := time.Since(start)
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:9") {
		t.Fatalf("Stat with nothing at the endpoint: %v, want ErrUnavailable naming 127.0.0.1:9", err)
	}
	if took > 10*time.Second {
		t.Errorf("failing took %s", took)
	}
	t.Logf("after %s: %v", took.Round(time.Millisecond), err)
}

// TestBadConfig: each bad or missing key is refused, naming it.
func TestBadConfig(t *testing.T) {
	good := map[string]any{"endpoint": "http://127.0.0.1:9000", "bucket": "ok-bucket", "access_key_id": "id", "secret_access_key": "s"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		cfg  map[string]any
		want string
	}{
		{with("bucket", nil), `key "bucket": must be set`},
		{with("bucket", "Bad_Bucket"), `key "bucket"`},
		{with("bucket", "ab"), `key "bucket"`},
		{with("access_key_id", nil), `key "access_key_id": must be set`},
		{with("secret_access_key", nil), `key "secret_access_key": must be set`},
		{with("endpoint", "ftp://host"), `key "endpoint"`},
		{with("endpoint", "http://host:9000/path"), `key "endpoint"`},
		{with("endpoint", "http://"), `key "endpoint"`},
		{with("endpoint", "host/path"), `key "endpoint"`},
		{with("endpoint", "user:pw@host"), `key "endpoint"`},
		{with("prefix", "/abs"), `key "prefix"`},
		{with("prefix", "a//b"), `key "prefix"`},
		{with("prefix", "a/../b"), `key "prefix"`},
		{with("part_size", 1<<20), `key "part_size"`},
		{with("part_size", 1<<30), `key "part_size"`},
		{with("path_style", "yes"), `path_style`},
		{with("secret_key", "x"), `unknown key "secret_key"`},
	}
	for _, tt := range tests {
		c, err := sdk.NewConfig(tt.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = (&backend{}).Configure(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %v: error %v, want one containing %q", tt.cfg, err, tt.want)
		}
	}
	for ep, want := range map[string]string{"": "s3.amazonaws.com", "minio:9000": "minio:9000", "https://s3.example.com/": "s3.example.com", "http://127.0.0.1:9000": "127.0.0.1:9000"} {
		host, secure, err := parseEndpoint(ep)
		if err != nil || host != want || secure != !strings.HasPrefix(ep, "http://") {
			t.Errorf("endpoint %q: %q %v %v", ep, host, secure, err)
		}
	}
}

// TestRanges reads ranges of a multipart blob, across its part boundaries.
func TestRanges(t *testing.T) {
	e := needMinIO(t)
	b := storage{inProcess(t, e.tables(freshBucket(), map[string]any{"part_size": minPartSize}))}
	data := make([]byte, 2*minPartSize+12345)
	mrand.NewChaCha8([32]byte{7}).Read(data)
	put(t, b, "blob", data)
	size := int64(len(data))
	for _, r := range [][2]int64{
		{0, -1}, {0, 1}, {1, 10}, {minPartSize - 5, 10}, {minPartSize, minPartSize},
		{minPartSize - 1, minPartSize + 2}, {2*minPartSize - 1, -1}, {size - 1, 1}, {size - 1, 100},
		{size, -1}, {size, 5}, {size + 100, -1}, {123, 0},
	} {
		off, n := r[0], r[1]
		end := size
		if n >= 0 {
			end = min(off+n, size)
		}
		want := data[min(off, size):max(min(off, size), end)]
		if got := get(t, b, "blob", off, n); !bytes.Equal(got, want) {
			t.Errorf("Open(%d, %d): %d bytes, want %d bytes from %d", off, n, len(got), len(want), off)
		}
	}
}

// TestPrefixIsolates: backends with different prefixes on one bucket see
// only their own blobs, under the same names; one without a prefix sees
// them all, prefixed.
func TestPrefixIsolates(t *testing.T) {
	e := needMinIO(t)
	bucket := freshBucket()
	a := storage{inProcess(t, e.tables(bucket, map[string]any{"prefix": "tenant-a"}))}
	ab := storage{inProcess(t, e.tables(bucket, map[string]any{"prefix": "tenant-a/b/"}))}
	c := storage{inProcess(t, e.tables(bucket, map[string]any{"prefix": "tenant-ab"}))}
	all := storage{inProcess(t, e.tables(bucket, nil))}
	put(t, a, "x/1", []byte("a"))
	put(t, c, "x/1", []byte("c"))
	put(t, ab, "x/1", []byte("ab"))
	if got := get(t, a, "x/1", 0, -1); string(got) != "a" {
		t.Errorf("tenant-a reads %q", got)
	}
	if got := get(t, c, "x/1", 0, -1); string(got) != "c" {
		t.Errorf("tenant-ab reads %q", got)
	}
	list := func(b blob.Backend, prefix string) string {
		t.Helper()
		blobs, next, err := b.List(t.Context(), prefix, "", 0)
		if err != nil || next != "" {
			t.Fatalf("List: %v %q", err, next)
		}
		var names []string
		for _, bi := range blobs {
			names = append(names, bi.Name)
		}
		return strings.Join(names, " ")
	}
	if got := list(a, ""); got != "b/x/1 x/1" {
		t.Errorf("tenant-a lists %q", got)
	}
	if got := list(c, ""); got != "x/1" {
		t.Errorf("tenant-ab lists %q", got)
	}
	if got := list(ab, "x"); got != "x/1" {
		t.Errorf("tenant-a/b lists %q", got)
	}
	if got := list(all, ""); got != "tenant-a/b/x/1 tenant-a/x/1 tenant-ab/x/1" {
		t.Errorf("the whole bucket lists %q", got)
	}
	if err := c.Delete(t.Context(), "x/1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a, "x/1", 0, -1); string(got) != "a" {
		t.Errorf("after tenant-ab deleted its x/1, tenant-a reads %q", got)
	}
	// List cursors are names inside the prefix.
	blobs, next, err := a.List(t.Context(), "", "", 1)
	if err != nil || len(blobs) != 1 || blobs[0].Name != "b/x/1" || next != "b/x/1" {
		t.Fatalf("first page: %v %q %v", blobs, next, err)
	}
	blobs, next, err = a.List(t.Context(), "", next, 1)
	if err != nil || len(blobs) != 1 || blobs[0].Name != "x/1" || next != "" {
		t.Fatalf("second page: %v %q %v", blobs, next, err)
	}
}

// TestAbortLeavesNoUpload: an aborted or failed multipart upload leaves no
// object and no incomplete upload holding parts.
func TestAbortLeavesNoUpload(t *testing.T) {
	e := needMinIO(t)
	bucket := freshBucket()
	b := inProcess(t, e.tables(bucket, map[string]any{"part_size": minPartSize}))
	admin := e.admin(t)
	uploads := func(key string) int {
		t.Helper()
		r, err := admin.ListMultipartUploads(t.Context(), bucket, key, "", "", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Uploads)
	}
	w, err := b.Create(t.Context(), "aborted", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 2*minPartSize+1)); err != nil {
		t.Fatal(err)
	}
	if n := uploads("aborted"); n != 1 {
		t.Fatalf("%d multipart uploads under way, want 1", n)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if n := uploads("aborted"); n != 0 {
		t.Errorf("%d multipart uploads left after Abort", n)
	}
	if _, err := b.Stat(t.Context(), "aborted"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stat after Abort: %v", err)
	}

	// The upload's context cancelled mid-stream: Commit fails, and the
	// upload is aborted all the same.
	ctx, cancel := context.WithCancel(t.Context())
	w, err = b.Create(ctx, "cancelled", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 2*minPartSize+1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Commit(t.Context()); err == nil {
		t.Fatal("Commit after the upload's context was cancelled succeeded")
	}
	if n := uploads("cancelled"); n != 0 {
		t.Errorf("%d multipart uploads left after a failed Commit", n)
	}
	if _, err := b.Stat(t.Context(), "cancelled"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stat after a failed Commit: %v", err)
	}
}

// TestLargeUploadMemory streams 256 MiB of unknown size into the backend the
// plugin serves, in the SDK's 256 KiB chunks, and measures the heap of this
// process meanwhile: it must stay bounded by the parts in flight (and the
// garbage collector's slack), not grow with the blob. The same upload
// through the real binary bounds the plugin process's peak RSS.
func TestLargeUploadMemory(t *testing.T) {
	e := needMinIO(t)
	const size = 256 << 20
	const mib = 1 << 20
	tb := e.tables(freshBucket(), nil)
	b := inProcess(t, tb)
	stream := func(bk blob.Backend, name string) []byte {
		t.Helper()
		w, err := bk.Create(t.Context(), name, -1)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		src := io.LimitReader(mrand.NewChaCha8([32]byte{9}), size)
		if _, err := io.CopyBuffer(io.MultiWriter(w, h), src, make([]byte, 256<<10)); err != nil {
			w.Abort()
			t.Fatal(err)
		}
		if err := w.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		return h.Sum(nil)
	}
	check := func(bk blob.Backend, name string, sum []byte) {
		t.Helper()
		r, err := bk.Open(t.Context(), name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := sha256.New()
		if n, err := io.Copy(h, r); err != nil || n != size {
			t.Fatalf("read back %d bytes: %v", n, err)
		}
		if !bytes.Equal(h.Sum(nil), sum) {
			t.Fatal("SHA-256 of the blob read back differs")
		}
		if err := bk.Delete(t.Context(), name); err != nil {
			t.Error(err)
		}
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	sum := stream(storage{b}, "big")
	took := time.Since(start)
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapGrowth := int64(peak.Load()) - int64(before.HeapInuse)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("in process: %d MiB in %s; heap in use grew by at most %.1f MiB (from %.1f), %.1f MiB allocated in all; part size %d MiB, %d in flight",
		size/mib, took.Round(time.Millisecond), float64(heapGrowth)/mib, float64(before.HeapInuse)/mib, float64(allocated)/mib, defaultPartSize/mib, inFlight)
	// The parts (one filling, inFlight sending), as much again of garbage
	// before a collection, and the HTTP machinery: a quarter of the blob.
	// Under the race detector sync.Pool drops buffers at random, and the
	// parts reallocated add garbage.
	limit := int64(2*(inFlight+1)*defaultPartSize + 32*mib)
	if raceEnabled {
		limit += 32 * mib
	}
	if heapGrowth > limit {
		t.Errorf("heap grew by %d MiB during a %d MiB upload, want at most %d MiB", heapGrowth/mib, size/mib, limit/mib)
	}
	// The race detector makes sync.Pool drop buffers at random.
	if !raceEnabled && allocated > size/4 {
		t.Errorf("%d MiB allocated for a %d MiB upload: part buffers are not reused", allocated/mib, size/mib)
	}
	check(storage{b}, "big", sum)

	// Through the real binary: the plugin process's peak RSS.
	hb, pid, _ := viaHost(t, tb)
	base := peakRSS(pid)
	start = time.Now()
	sum = stream(hb, "big-via-host")
	t.Logf("through the plugin: %d MiB in %s; plugin peak RSS %s after starting, %s after the upload",
		size/mib, time.Since(start).Round(time.Millisecond), base, peakRSS(pid))
	if kb := peakRSSKiB(pid); kb > 128<<10 {
		t.Errorf("plugin peak RSS %d MiB for a %d MiB upload, want under 128 MiB", kb>>10, size/mib)
	}
	check(hb, "big-via-host", sum)
}

// storage adapts the in-process backend to blob.Backend for the helpers.
type storage struct{ b *backend }

func (s storage) Stat(ctx context.Context, name string) (blob.Info, error) {
	i, err := s.b.Stat(ctx, name)
	return blob.Info(i), err
}
func (s storage) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	return s.b.Open(ctx, name, off, n)
}
func (s storage) Create(ctx context.Context, name string, size int64) (blob.Writer, error) {
	return s.b.Create(ctx, name, size)
}
func (s storage) Delete(ctx context.Context, name string) error { return s.b.Delete(ctx, name) }
func (s storage) List(ctx context.Context, prefix, cursor string, limit int) ([]blob.Info, string, error) {
	bs, next, err := s.b.List(ctx, prefix, cursor, limit)
	out := make([]blob.Info, len(bs))
	for i, bi := range bs {
		out[i] = blob.Info(bi)
	}
	return out, next, err
}

func peakRSS(pid int) string { return fmt.Sprintf("%.1f MiB", float64(peakRSSKiB(pid))/1024) }

// peakRSSKiB reads a process's peak resident set size (VmHWM) from /proc.
func peakRSSKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return -1
}
