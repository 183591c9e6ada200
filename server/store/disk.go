package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

func (s *Store) syncDir(name string) error {
	d, err := s.root.Open(name)
	if err != nil {
		return fmt.Errorf("open %s for fsync: %w", name, err)
	}
	defer d.Close()
	if err := fsync(d); err != nil {
		return fmt.Errorf("fsync %s: %w", name, mapErr(err))
	}
	return nil
}

// fsync makes a file or folder durable. Benchmarks swap it out to measure
// what durability costs; nothing else does.
var fsync = (*os.File).Sync

func newVersion() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func blobPath(blob string) string { return "blobs/" + blob[:2] + "/" + blob }

// mapErr turns filesystem errors that a client can cause or must hear about
// into the store's errors.
// The errors it maps carry the system's reason but not the file's path:
// their text reaches clients, and paths inside the data directory are not
// theirs to know (docs/security.md).
func mapErr(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		sentinel = ErrNoSpace
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		sentinel = ErrConflict
	case errors.Is(err, syscall.ENAMETOOLONG):
		sentinel = ErrInvalidKey
	default:
		return err
	}
	if errors.Is(err, sentinel) {
		return err // mapped already
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("%w (%v)", sentinel, errno)
	}
	return sentinel
}

// removeBlob deletes the local file of a blob no object names any more
// (copies share blobs).
func (s *Store) removeBlob(blob string) {
	if s.blobReferenced(context.Background(), blob) {
		return
	}
	if err := s.root.Remove(blobPath(blob)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("could not remove replaced blob; reindex removes it later", "blob", blob, "err", err)
	}
}
