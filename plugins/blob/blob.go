// Package blob is the contract between attachd's store and a storage
// backend: named byte strings, written once and made visible whole, read by
// range. Names, folders, hashes and metadata belong to the store's index; a
// backend only keeps bytes. The store's local folder backend and the host's
// storage plugin clients (SFTP, Azure Blob, S3) implement it.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Errors a backend returns; the store maps them to its own (they are the
// same values).
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalidName = errors.New("invalid key")
)

// Backend is a blob store.
type Backend interface {
	// Stat returns the blob's size, or ErrNotFound.
	Stat(ctx context.Context, name string) (Info, error)
	// Open reads n bytes of the blob from off (n < 0: to the end). A range
	// past the end reads what there is, possibly nothing.
	Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error)
	// Create starts writing a blob. Nothing is visible until Commit; Abort, or
	// a writer dropped without Commit, leaves nothing. size is -1 if unknown.
	Create(ctx context.Context, name string, size int64) (Writer, error)
	// Delete removes the blob; a missing blob is not an error.
	Delete(ctx context.Context, name string) error
	// List returns up to limit blobs whose names start with prefix, in name
	// order, after cursor (""), and the cursor of the next page ("" at the end).
	List(ctx context.Context, prefix, cursor string, limit int) ([]Info, string, error)
}

// Writer is a blob being written.
type Writer interface {
	io.Writer
	// Commit makes the blob visible, replacing any blob of the same name.
	Commit(ctx context.Context) error
	// Abort discards what was written. It may be called after Commit, to no effect.
	Abort() error
}

// Info describes a stored blob.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// FileWriter is a Writer that can take bytes straight from a local file
// rather than through Write: a storage plugin on the same host reads them
// from the file itself, through a descriptor the host passes it.
type FileWriter interface {
	// WriteFile appends n bytes of f read at off; f's position is neither
	// used nor moved. The bytes may still be in flight when it returns:
	// Commit reports whether they all arrived.
	WriteFile(f *os.File, off, n int64) (int64, error)
}

// copyBuffer is the size of each Write when CopyFile streams a file.
const copyBuffer = 1 << 20

// CopyFile appends the whole of f, as Stat sizes it, to w: through
// FileWriter if w has it, else in Writes of 1 MiB.
func CopyFile(w Writer, f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", f.Name(), err)
	}
	if fw, ok := w.(FileWriter); ok {
		return fw.WriteFile(f, 0, fi.Size())
	}
	return io.CopyBuffer(w, io.NewSectionReader(f, 0, fi.Size()), make([]byte, copyBuffer))
}
