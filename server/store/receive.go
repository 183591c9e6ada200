package store

import (
	"errors"
	"fmt"
	"io"
)

// BodyError is a failure of the client's request body: the connection was
// cut or reset, the body was too slow, or it ended early. Nothing is stored;
// front ends answer 400 (the server answers 408 for a body it cut itself).
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "reading the request body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// ClientBody wraps a request body so that its read failures are *BodyError
// and can be told from the store's own (a full disk, a failing backend).
func ClientBody(r io.Reader) io.Reader { return clientBody{r} }

type clientBody struct{ r io.Reader }

func (b clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		var be *BodyError
		if !errors.As(err, &be) {
			err = &BodyError{err}
		}
	}
	return n, err
}

// CheckSize refuses a body whose declared length (Content-Length; -1 if
// unknown) is over the store's maximum, before a byte of it is read. Bodies
// of unknown length are held to the same maximum as they are written.
func (s *Store) CheckSize(declared int64) error {
	if s.maxSize > 0 && declared > s.maxSize {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, s.maxSize)
	}
	return nil
}

// Receive reads a client's body whole into a new upload: the one way bytes
// enter the store. Commit the upload under a key, or Abort it. declared is
// the body's Content-Length, or -1.
func (s *Store) Receive(body io.Reader, declared int64) (*Upload, error) {
	if err := s.CheckSize(declared); err != nil {
		return nil, err
	}
	u, err := s.NewUpload()
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(u, ClientBody(body)); err != nil {
		u.Abort()
		return nil, err
	}
	return u, nil
}

// Discard reads a client's body whole and keeps nothing, within the same
// maximum as Receive: for writes that are answered but not kept.
func (s *Store) Discard(body io.Reader, declared int64) error {
	if err := s.CheckSize(declared); err != nil {
		return err
	}
	r := ClientBody(body)
	if s.maxSize > 0 {
		r = io.LimitReader(r, s.maxSize+1)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	if s.maxSize > 0 && n > s.maxSize {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, s.maxSize)
	}
	return nil
}
