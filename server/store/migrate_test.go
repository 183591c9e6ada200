package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func memBytes(t *testing.T, m *MemBackend, name string) []byte {
	t.Helper()
	rc, err := m.Open(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

// TestMigrate copies a data directory's objects into a backend beside the
// open store, skips them the second time, prunes what was deleted since,
// refuses corrupt bytes by key, and copies back into "local".
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	bodies := map[string][]byte{}
	for i := range 30 {
		key := fmt.Sprintf("p/acct/%02d/vm.mp3", i)
		bodies[key] = randBytes(i * 997)
		if _, err := s.Put(ctx, key, bytes.NewReader(bodies[key]), Info{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	mem := NewMemBackend()
	var last CopyProgress
	res, err := Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem, Progress: func(p CopyProgress) { last = p }})
	if err != nil || res.Objects != 30 || res.Copied != 30 {
		t.Fatalf("Migrate = %+v, %v", res, err)
	}
	if last.Done.Objects != 30 || last.Total.Objects != 30 || last.Done.Bytes != res.Bytes || res.Bytes == 0 {
		t.Fatalf("last progress %+v, result %+v", last, res)
	}
	for key, body := range bodies {
		o, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(memBytes(t, mem, remoteBlob(o.Blob)), body) {
			t.Fatalf("%s: bytes differ in the target", key)
		}
		if sc, err := decodeSidecar(key, memBytes(t, mem, remoteSidecar(key))); err != nil || sc.Blob != o.Blob || sc.SHA256 != o.SHA256 {
			t.Fatalf("%s: sidecar %+v, %v", key, sc, err)
		}
	}

	res, err = Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem})
	if err != nil || res.Copied != 0 || res.Skipped != 30 || res.Resumed {
		t.Fatalf("second Migrate = %+v, %v", res, err)
	}

	// Deleted since: counted, and pruned once the store is stopped.
	if err := s.Delete(ctx, "p/acct/03/vm.mp3"); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem, Prune: true}); err == nil {
		t.Fatal("--prune beside an open store: no error")
	}
	res, err = Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem})
	if err != nil || res.Orphans != 1 || res.Pruned != 0 {
		t.Fatalf("Migrate after a delete = %+v, %v", res, err)
	}
	o5, _ := s.Stat(ctx, "p/acct/05/vm.mp3")
	s.Close()
	res, err = Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem, Prune: true})
	if err != nil || res.Pruned != 1 {
		t.Fatalf("Migrate with Prune = %+v, %v", res, err)
	}
	if _, err := mem.Stat(ctx, remoteSidecar("p/acct/03/vm.mp3")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned sidecar: %v", err)
	}

	// Corrupt bytes, same size: not copied, named.
	mem.Delete(ctx, remoteBlob(o5.Blob))
	path := filepath.Join(dir, blobPath(o5.Blob))
	b, _ := os.ReadFile(path)
	b[0] ^= 1
	os.WriteFile(path, b, 0o640)
	_, err = Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem})
	var me *MigrateError
	if !errors.As(err, &me) || len(me.Failed) != 1 || !strings.Contains(err.Error(), `"p/acct/05/vm.mp3"`) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Migrate of a corrupt blob: %v", err)
	}
	if _, err := mem.Stat(ctx, remoteBlob(o5.Blob)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("corrupt blob committed in the target: %v", err)
	}
	b[0] ^= 1
	os.WriteFile(path, b, 0o640)
	if _, err := Migrate(ctx, dir, MigrateOptions{From: LocalBackend, To: "mem", Target: mem}); err != nil {
		t.Fatal(err)
	}

	// Back to local, from the backend alone.
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "*", "*"))
	for _, b := range blobs {
		os.Remove(b)
	}
	res, err = Migrate(ctx, dir, MigrateOptions{From: "mem", To: LocalBackend, Source: mem})
	if err != nil || res.Copied != 29 {
		t.Fatalf("Migrate to local = %+v, %v", res, err)
	}
	s = openTest(t, dir)
	defer s.Close()
	for key, body := range bodies {
		if key == "p/acct/03/vm.mp3" {
			continue
		}
		if !bytes.Equal(readAll(t, s, key), body) {
			t.Fatalf("%s: bytes differ after migrating back", key)
		}
	}
}

// TestSampleStranded: a store whose backend holds none of its objects'
// bytes says so from a sample.
func TestSampleStranded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mem := NewMemBackend()
	s, err := Open(dir, Options{Remote: mem, Through: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := s.Put(ctx, fmt.Sprintf("a/%d/b/%d.mp3", i%5, i), bytes.NewReader(randBytes(10)), Info{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.SampleStranded(ctx, 8); err != nil || r.Missing != 0 || r.Sampled < 2 || r.Objects != 40 {
		t.Fatalf("SampleStranded = %+v, %v", r, err)
	}
	s.Close()
	s, err = Open(dir, Options{Remote: NewMemBackend()}) // another, empty backend
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.SampleStranded(ctx, 8)
	if err != nil || r.Missing != r.Sampled || r.Sampled < 2 || r.Estimate() != 40 || r.Example == "" {
		t.Fatalf("SampleStranded = %+v (estimate %d), %v", r, r.Estimate(), err)
	}
}
