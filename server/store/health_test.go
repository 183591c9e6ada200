package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func blobFile(t *testing.T, dir string, s *Store, key string) string {
	t.Helper()
	o, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, blobPath(o.Blob))
}

// TestMissingBlob: an object whose blob was removed behind the server's back
// is ErrCorrupt on read, cannot be copied, and reindex moves its sidecar to
// lost/ so that it is no longer served.
func TestMissingBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	setupPut("a/x", "a/y")(t, s)
	if err := os.Remove(blobFile(t, dir, s, "a/x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, "a/x"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: got %v, want ErrCorrupt", err)
	}
	if err := s.Copy(ctx, "a/x", "a/z", false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("copy: got %v, want ErrCorrupt", err)
	}
	if _, err := s.Stat(ctx, "a/z"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed copy left an object: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Reindex(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lost/a/x")); err != nil {
		t.Fatalf("sidecar not moved to lost/: %v", err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if _, err := s.Stat(ctx, "a/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after reindex: got %v, want ErrNotFound", err)
	}
	if got := string(readAll(t, s, "a/y")); got != "v1 of a/y" {
		t.Fatalf("the sound object: got %q", got)
	}
}

// TestCorruptIndexIsRebuilt damages index.db while the server is stopped,
// in its header and in its pages: the next start moves it aside and
// rebuilds it from the sidecars, and so does reindex.
func TestCorruptIndexIsRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   func(size int64) int64
	}{
		{"header", func(int64) int64 { return 0 }},
		{"pages", func(size int64) int64 { return size / 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s := openTest(t, dir)
			for i := range 300 {
				setupPut("a/"+strings.Repeat("k", 100)+string(rune('a'+i%26))+string(rune('0'+i/26)))(t, s)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			idx := filepath.Join(dir, "index.db")
			fi, err := os.Stat(idx)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(idx, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			junk := []byte(strings.Repeat("\xde\xad\xbe\xef", 2048))
			if _, err := f.WriteAt(junk, tc.at(fi.Size())); err != nil {
				t.Fatal(err)
			}
			f.Close()

			s = openTest(t, dir)
			entries, err := s.List(ctx, "a")
			if err != nil || len(entries) != 300 {
				t.Fatalf("after rebuild: %d objects, %v; want 300", len(entries), err)
			}
			if err := s.Check(ctx); err != nil {
				t.Fatalf("check after rebuild: %v", err)
			}
			s.Close()
			aside, _ := filepath.Glob(filepath.Join(dir, "index.db.corrupt-*"))
			if len(aside) == 0 {
				t.Fatal("the corrupt index was not kept aside")
			}
		})
	}
}

// TestCheck: the store is not ready when its index is gone or its data
// directory cannot be written.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Rename(tmp, tmp+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err == nil {
		t.Fatal("unwritable data directory: Check says ready")
	}
	os.Remove(tmp)
	os.Rename(tmp+".away", tmp)
	if err := s.Check(ctx); err != nil {
		t.Fatalf("restored: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "index.db"), filepath.Join(dir, "index.db.gone")); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "index") {
		t.Fatalf("index gone: got %v", err)
	}
	os.Rename(filepath.Join(dir, "index.db.gone"), filepath.Join(dir, "index.db"))
}
