package store

import "fmt"

// WriteMode says when a store with a remote backend answers.
type WriteMode string

// Write modes.
const (
	// WriteSpool answers once the bytes are fsync'd locally; the outbox
	// moves them to the backend (Kazoo has no client timeout: a slow cloud
	// must not hang it).
	WriteSpool WriteMode = "spool"
	// WriteThrough answers only once the backend has committed them.
	WriteThrough WriteMode = "through"
)

// UnmarshalText accepts the two modes only, so that a configuration with
// another is refused where it is read, with its key and line.
func (m *WriteMode) UnmarshalText(b []byte) error {
	switch v := WriteMode(b); v {
	case WriteSpool, WriteThrough:
		*m = v
		return nil
	}
	return fmt.Errorf("want %q or %q, got %q", WriteSpool, WriteThrough, b)
}

// LocalBackend names the data directory as the backend: no plugin.
const LocalBackend = "local"
