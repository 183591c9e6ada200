// Package status maps errors to HTTP status codes: the one table from the
// store's errors to what a client hears, used by the Kazoo route and the
// WebDAV drive alike. Each front end maps its own protocol's errors first.
package status

import (
	"context"
	"errors"
	"net/http"

	"github.com/attachd/attachd/server/store"
)

// entry is one row of the table: an error, its status and what the client
// is told (no detail: that goes to the log).
type entry struct {
	err  error
	code int
	msg  string
}

// table is in order: the first match wins.
var table = []entry{
	{store.ErrNotFound, http.StatusNotFound, "not found"},
	{store.ErrExists, http.StatusPreconditionFailed, "already exists"},
	{store.ErrConflict, http.StatusConflict, ""},
	{store.ErrNotEmpty, http.StatusConflict, "folder not empty"},
	{store.ErrInvalidKey, http.StatusBadRequest, ""},
	{store.ErrShortBody, http.StatusBadRequest, ""},
	{store.ErrTooLarge, http.StatusRequestEntityTooLarge, "request body too large"},
	{store.ErrNoSpace, http.StatusInsufficientStorage, "no space left on the server's disk"},
	{store.ErrQuota, http.StatusInsufficientStorage, "quota exceeded"},
	{store.ErrLocked, http.StatusLocked, "locked"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "storage backend unavailable; try again"},
	{store.ErrCorrupt, http.StatusInternalServerError, "internal error; see the server log"},
	// The request ended before its answer: the client went away, or the
	// server is stopping. Nobody may read this; if anyone does (Kazoo),
	// it is worth a retry.
	{context.Canceled, http.StatusServiceUnavailable, "request cancelled; try again"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "timed out; try again"},
}

// Of returns the status code for err and a short message for the client.
// An empty message from the table means the error's own text, which for
// these errors names no server path (store.mapErr).
func Of(err error) (int, string) {
	var be *store.BodyError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "request body too large"
	case errors.As(err, &be):
		return http.StatusBadRequest, "incomplete request body"
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			if e.msg == "" {
				return e.code, err.Error()
			}
			return e.code, e.msg
		}
	}
	return http.StatusInternalServerError, "internal error; see the server log"
}
