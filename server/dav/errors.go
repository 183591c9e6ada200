package dav

import (
	"errors"
	"net/http"

	"github.com/attachd/attachd/server/status"
)

// Errors of the protocol layer; fail maps them and the store's to statuses.
var (
	errBadRequest   = errors.New("bad request")
	errOutside      = errors.New("path outside the WebDAV tree")
	errOtherServer  = errors.New("destination is on another server")
	errReadOnlyUser = errors.New("this login is read-only")
	errReadOnlyView = errors.New("the @by-date view is read-only")
	errForbidden    = errors.New("forbidden")
	errJunk         = errors.New("OS metadata files are refused here (dav.hide_junk = \"refuse\")")
	errPrecondition = errors.New("precondition failed")
	errLocked       = errors.New("locked: submit the lock token in an If: header")
	errNotAllowed   = errors.New("method not allowed on this resource")
	errUnsupported  = errors.New("unsupported media type: this method takes no body")
	errTooLarge     = errors.New("request body too large")
	errFull         = errors.New("insufficient storage")
	errFiniteDepth  = errors.New("PROPFIND with Depth: infinity is not supported")
	errNoSuchLock   = errors.New("no such lock on this resource")
)

// fail answers the request with the status err maps to; ServeHTTP calls it
// for every error a handler returns. Server-side errors are logged; the
// client gets a short message without internals.
func (q *request) fail(err error) {
	code := statusOf(err)
	switch code {
	case http.StatusInternalServerError:
		q.h.log.Error("webdav request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", err)
		http.Error(q.w, "internal error", code)
		return
	case http.StatusLocked:
		var le *lockedError
		if errors.As(err, &le) && le.href != "" {
			q.w.Header().Set("Content-Type", xmlContentType)
			q.w.WriteHeader(code)
			q.w.Write([]byte(xmlHeader + `<D:error xmlns:D="DAV:"><D:lock-token-submitted><D:href>` +
				escapeString(le.href) + `</D:href></D:lock-token-submitted></D:error>`))
			return
		}
	case http.StatusForbidden:
		if errors.Is(err, errFiniteDepth) {
			// RFC 4918 §9.1: say which precondition failed.
			q.w.Header().Set("Content-Type", xmlContentType)
			q.w.WriteHeader(code)
			q.w.Write([]byte(xmlHeader + `<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`))
			return
		}
	}
	http.Error(q.w, err.Error(), code)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errOutside):
		return http.StatusNotFound
	case errors.Is(err, errOtherServer):
		return http.StatusBadGateway
	case errors.Is(err, errReadOnlyUser), errors.Is(err, errReadOnlyView), errors.Is(err, errForbidden),
		errors.Is(err, errJunk), errors.Is(err, errFiniteDepth):
		return http.StatusForbidden
	case errors.Is(err, errPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(err, errLocked):
		return http.StatusLocked
	case errors.Is(err, errNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errFull):
		return http.StatusInsufficientStorage
	case errors.Is(err, errNoSuchLock):
		return http.StatusConflict
	}
	code, _ := status.Of(err)
	return code
}

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// xmlContentType is the type of every XML body attachd sends, written as
// Apache's mod_dav writes it: some clients (nd) accept text/xml only, and
// application/xml means the same to the others (RFC 4918 §8.2).
const xmlContentType = `text/xml; charset="utf-8"`
