package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestLinksOutOfTheDataDirectory plants symbolic links that lead out of the
// data directory, where only someone with write access to it could, and
// checks that the store neither writes nor reads through them (invariant
// 4), with openat2 (beneath) and with the os.Root walk it falls back to.
func TestLinksOutOfTheDataDirectory(t *testing.T) {
	for _, walk := range []bool{false, true} {
		name := "openat2"
		if walk {
			name = "os.Root"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir, outside := t.TempDir(), t.TempDir()
			s := openTest(t, dir)
			defer s.Close()
			if !walk && s.top == nil {
				t.Fatal("openat2 is unavailable on this kernel: the fast path is not tested")
			}
			if walk && s.top != nil {
				s.top.close()
				s.top = nil
			}
			if err := os.Symlink(outside, filepath.Join(dir, "objects", "out")); err != nil {
				t.Fatal(err)
			}
			if s.Absent("out/x") {
				t.Error("Absent looked through a link out of the data directory")
			}
			if _, err := s.Put(ctx, "out/x", bytes.NewReader([]byte("data")), Info{Size: -1}); err == nil {
				t.Error("a store through a link out of the data directory succeeded")
			}
			if es, _ := os.ReadDir(outside); len(es) != 0 {
				t.Errorf("the store wrote outside the data directory: %v", es)
			}

			// A blob replaced by a link to a file outside is not read.
			o, err := s.Put(ctx, "in", bytes.NewReader([]byte("inside")), Info{Size: -1})
			if err != nil {
				t.Fatal(err)
			}
			secret := filepath.Join(outside, "secret")
			if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			blob := filepath.Join(dir, blobPath(o.Blob))
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(secret, blob); err != nil {
				t.Fatal(err)
			}
			if f, _, err := s.Open(ctx, "in"); err == nil {
				f.Close()
				t.Error("a blob that is a link out of the data directory was opened")
			}
			if f, err := s.OpenLocalBlob(o.Blob); err == nil {
				f.Close()
				t.Error("OpenLocalBlob opened a link out of the data directory")
			}
		})
	}
}
