package host_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/sdk"
	"github.com/attachd/attachd/server/store/storetest"
)

// memStorage keeps blobs in memory. With crashAfter set, the plugin
// process exits once a read or write has moved that many bytes: a crash
// mid-transfer.
type memStorage struct {
	mu         sync.Mutex
	blobs      map[string][]byte
	crashAfter int
}

func (m *memStorage) Stat(ctx context.Context, name string) (sdk.BlobInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[name]
	if !ok {
		return sdk.BlobInfo{}, sdk.ErrNotFound
	}
	return sdk.BlobInfo{Name: name, Size: int64(len(b))}, nil
}

func (m *memStorage) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if m.crashAfter > 0 { // endless bytes, then a crash
		return io.NopCloser(&crasher{r: rand.Reader, left: m.crashAfter}), nil
	}
	m.mu.Lock()
	b, ok := m.blobs[name]
	m.mu.Unlock()
	if !ok {
		return nil, sdk.ErrNotFound
	}
	if n < 0 {
		n = int64(len(b))
	}
	return io.NopCloser(io.NewSectionReader(bytes.NewReader(b), off, n)), nil
}

func (m *memStorage) Create(ctx context.Context, name string, size int64) (sdk.BlobWriter, error) {
	return &memWriter{m: m, name: name}, nil
}

func (m *memStorage) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, name)
	return nil
}

func (m *memStorage) List(ctx context.Context, prefix, cursor string, limit int) ([]sdk.BlobInfo, string, error) {
	m.mu.Lock()
	var all []sdk.BlobInfo
	for name, b := range m.blobs {
		all = append(all, sdk.BlobInfo{Name: name, Size: int64(len(b))})
	}
	m.mu.Unlock()
	page, next := sdk.Page(all, prefix, cursor, limit)
	return page, next, nil
}

type memWriter struct {
	m    *memStorage
	name string
	buf  bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.m.crashAfter > 0 && w.buf.Len()+len(p) > w.m.crashAfter {
		os.Exit(9)
	}
	return w.buf.Write(p)
}

func (w *memWriter) Commit(ctx context.Context) error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if w.m.blobs == nil {
		w.m.blobs = map[string][]byte{}
	}
	w.m.blobs[w.name] = bytes.Clone(w.buf.Bytes())
	return nil
}

func (w *memWriter) Abort() error { return nil }

// crasher reads left bytes from r, then exits the process.
type crasher struct {
	r    io.Reader
	left int
}

func (c *crasher) Read(p []byte) (int, error) {
	if c.left <= 0 {
		os.Exit(9)
	}
	n, err := c.r.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// spool writes n random bytes to a file, as the store's spool holds an
// upload, and returns it open for reading, with the bytes.
func spool(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	want := make([]byte, n)
	rand.Read(want)
	path := filepath.Join(t.TempDir(), "spooled")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, want
}

// TestFdPassing stores a spooled file through blob.CopyFile and reads it
// back whole and by range, with a plugin that takes descriptors and with
// one built before them (which must get the same bytes as chunks).
func TestFdPassing(t *testing.T) {
	for _, tc := range []struct {
		plugin string
		fd     bool
	}{{"memory", true}, {"memstream", false}} {
		t.Run(tc.plugin, func(t *testing.T) {
			m, err := newManager(t, fault(t, tc.plugin), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if st := status(m); st.FdPassing != tc.fd {
				t.Fatalf("FdPassing = %v, want %v", st.FdPassing, tc.fd)
			}
			b, err := m.Backend(tc.plugin)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			f, want := spool(t, 5<<20+17)
			w, err := b.Create(ctx, "a/blob", int64(len(want)))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := blob.CopyFile(w, f); err != nil || n != int64(len(want)) {
				t.Fatalf("CopyFile: %d, %v", n, err)
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct{ off, n int64 }{{0, -1}, {1 << 20, 3}, {int64(len(want)) - 5, 100}, {int64(len(want)), -1}} {
				rc, err := b.Open(ctx, "a/blob", r.off, r.n)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				end := int64(len(want))
				if r.n >= 0 {
					end = min(end, r.off+r.n)
				}
				if err != nil || !bytes.Equal(got, want[r.off:end]) {
					t.Fatalf("Open(%d, %d): %d bytes (%v), want %d", r.off, r.n, len(got), err, end-r.off)
				}
			}
			if _, err := b.Open(ctx, "missing", 0, -1); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Open of a missing blob: %v", err)
			}
		})
	}
}

// TestConformanceStreamOnly runs the storage suite through a plugin that
// does not take descriptors: older plugins keep working.
func TestConformanceStreamOnly(t *testing.T) {
	m, err := newManager(t, fault(t, "memstream"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Backend("memstream")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(*testing.T) blob.Backend { return b })
}

// TestFdPassingShortFile announces more bytes than the passed file holds:
// the commit fails and nothing is stored.
func TestFdPassingShortFile(t *testing.T) {
	m, err := newManager(t, fault(t, "memory"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Backend("memory")
	ctx := context.Background()
	f, _ := spool(t, 1000)
	w, err := b.Create(ctx, "short", 2000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.(blob.FileWriter).WriteFile(f, 0, 2000); err != nil {
		t.Logf("WriteFile: %v", err)
	}
	wantErr(t, w.Commit(ctx), "read 1000 bytes of 2000")
	if _, err := b.Stat(ctx, "short"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after a failed commit: %v", err)
	}
}

// TestFdPassingCrash: a plugin that dies in the middle of reading a passed
// file or writing into the download pipe fails the transfer (a download's
// truncated bytes never pass for the whole blob), and is restarted.
func TestFdPassingCrash(t *testing.T) {
	m, err := newManager(t, fault(t, "midcrash"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Backend("midcrash")
	ctx := context.Background()
	if !status(m).FdPassing {
		t.Fatal("the plugin does not take descriptors")
	}

	pid := status(m).PID
	rc, err := b.Open(ctx, "anything", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err == nil {
		t.Fatalf("download cut by a crash after %d bytes read as complete", n)
	}
	t.Logf("download: %d bytes, then %v", n, err)
	waitRestart(t, m, pid, 30*time.Second)

	pid = status(m).PID
	f, _ := spool(t, 3<<20)
	w, err := b.Create(ctx, "crashed", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blob.CopyFile(w, f); err != nil {
		t.Logf("CopyFile: %v", err)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("commit of an upload cut by a crash succeeded")
	}
	st := waitRestart(t, m, pid, 30*time.Second)
	if !st.FdPassing {
		t.Fatal("the restarted plugin does not take descriptors")
	}
	if _, err := b.Stat(ctx, "crashed"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after the crash: %v", err)
	}
}
