package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unevenReader returns what it holds in reads of random sizes up to 100 KiB,
// as a network connection does, then fails with err (io.EOF if nil).
type unevenReader struct {
	b   []byte
	err error
	rng *rand.Rand
}

func (r *unevenReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), 1+r.rng.IntN(100<<10))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// TestUploadPipeline stores bodies around the sizes where ReadFrom changes
// course (one buffer; more than the ring holds) and checks the bytes, size
// and SHA-256 the sidecar records.
func TestUploadPipeline(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	sizes := []int{0, 1, bufSize - 1, bufSize, bufSize + 1, 2 * bufSize, ringSize * bufSize,
		ringSize*bufSize + 1, 3*ringSize*bufSize + 12345}
	for i, size := range sizes {
		data := randBytes(size)
		r := &unevenReader{b: data, rng: rand.New(rand.NewPCG(uint64(i), 1))}
		o, err := s.Put(ctx, "k", r, Info{Size: int64(size)})
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if o.Size != int64(size) || o.SHA256 != sum(data) {
			t.Errorf("%d bytes: recorded size %d, sha256 %s, want %s", size, o.Size, o.SHA256, sum(data))
		}
		if got := readAll(t, s, "k"); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: read back %d bytes that differ", size, len(got))
		}
	}
}

// TestUploadPipelineFailures fails a big body's read, and its write, after
// several buffers: the error comes back, nothing is stored, and nothing is
// left in tmp/.
func TestUploadPipelineFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	old := randBytes(1000)
	if _, err := s.Put(ctx, "k", bytes.NewReader(old), Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	big := randBytes(3 * ringSize * bufSize)
	errReset := errors.New("connection reset")

	r := &unevenReader{b: big, err: errReset, rng: rand.New(rand.NewPCG(7, 7))}
	if _, err := s.Put(ctx, "k", r, Info{Size: int64(len(big) + 1)}); !errors.Is(err, errReset) {
		t.Errorf("read failure: err = %v, want %v", err, errReset)
	}

	u, err := s.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	u.f.Close() // every write now fails
	_, err = io.Copy(u, &unevenReader{b: big, rng: rand.New(rand.NewPCG(8, 8))})
	if err == nil || !strings.Contains(err.Error(), "write upload") {
		t.Errorf("write failure: err = %v, want a write error", err)
	}
	if _, cerr := u.Commit(ctx, "k", Info{Size: -1}); cerr == nil {
		t.Error("an upload whose write failed was committed")
	}

	if got := readAll(t, s, "k"); !bytes.Equal(got, old) {
		t.Error("previous version damaged")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp holds %d files", len(entries))
	}
}

// A sidecar removed by hand leaves its index row: a store of that key,
// guessed new from the missing sidecar, must find the row in its
// transaction and replace it (and free its blob), not fail or leak it.
func TestStoreOverARowWithoutSidecar(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	v1, err := s.Put(ctx, "a/k", bytes.NewReader([]byte("one")), Info{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "objects", "a", "k")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a later time, had the store kept its own
	o, err := s.Put(ctx, "a/k", bytes.NewReader([]byte("two")), Info{Size: -1})
	if err != nil {
		t.Fatalf("store over a row without its sidecar: %v", err)
	}
	if got := readAll(t, s, "a/k"); string(got) != "two" {
		t.Errorf("read back %q, want two", got)
	}
	if n := countBlobs(t, dir); n != 1 {
		t.Errorf("%d blobs, want 1: the replaced version's blob was not freed", n)
	}
	if cur, err := s.Stat(ctx, "a/k"); err != nil || cur.Blob != o.Blob || !cur.Created.Equal(v1.Created) {
		t.Errorf("index holds %+v, %v; want blob %s, created %v (the replaced row's)", cur, err, o.Blob, v1.Created)
	}
	if !o.Created.Equal(v1.Created) {
		t.Errorf("Put returned created %v, want the replaced row's %v", o.Created, v1.Created)
	}
}
