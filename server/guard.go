package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Headers sent with every response. Stored objects are whatever users
// uploaded, HTML and SVG included, under the types they declared: a browser
// must neither sniff another type nor run their scripts on attachd's origin.
// The sandbox gives a document a unique origin and no scripts; Kazoo and
// WebDAV clients ignore both headers.
const (
	nosniff   = "nosniff"
	sandboxed = "sandbox; default-src 'none'"
)

// errBodyTooSlow is the read error of a request body cut for sending nothing
// for body_idle_timeout, or less than min_body_rate. The front ends take it
// as any other failure of the client's body: the upload is aborted.
var errBodyTooSlow = errors.New("request body too slow")

// slowBody cuts a request body that idles or trickles, so that a client
// cannot hold a connection, an upload's temporary file and a goroutine for
// ever by sending a byte now and then.
type slowBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration // longest a Read may wait; 0: no limit
	minRate int64         // bytes per second of waiting, past idle; 0: none

	waited time.Duration // spent in Read, waiting for the client
	n      int64
	cut    atomic.Bool // read by the response writer, maybe on another goroutine
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.cut.Load() {
		return 0, errBodyTooSlow
	}
	if b.idle > 0 {
		// Per Read: the deadline bounds each wait, not the whole body. Not
		// every connection supports it (ErrNotSupported); the rate still holds.
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	start := time.Now()
	n, err := b.body.Read(p)
	b.waited += time.Since(start)
	b.n += int64(n)
	var ne net.Error
	switch {
	case err == io.EOF:
		// Done: net/http now reads ahead on the connection in the background,
		// and a deadline hit there would cancel the request's context while
		// the handler still commits the upload.
		if b.idle > 0 {
			b.rc.SetReadDeadline(time.Time{})
		}
	case errors.As(err, &ne) && ne.Timeout():
		b.cut.Store(true)
		return n, fmt.Errorf("%w: nothing received for %v", errBodyTooSlow, b.idle)
	case err == nil && b.minRate > 0 && b.waited > b.idle && float64(b.n) < float64(b.minRate)*b.waited.Seconds():
		// Measured on the time spent waiting for the client, so that a slow
		// disk or backend on our side never counts against it.
		b.cut.Store(true)
		return n, fmt.Errorf("%w: %d bytes in %v, under %d bytes/s", errBodyTooSlow, b.n, b.waited.Round(time.Millisecond), b.minRate)
	}
	return n, err
}

func (b *slowBody) Close() error { return b.body.Close() }

// limitBody puts a slowBody around r's body, if it has one.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) {
	l := s.now().cfg.Limits
	if r.Body == nil || r.Body == http.NoBody || (l.BodyIdleTimeout <= 0 && l.MinBodyRate <= 0) {
		return
	}
	r.Body = &slowBody{body: r.Body, rc: http.NewResponseController(w),
		idle: time.Duration(l.BodyIdleTimeout), minRate: int64(l.MinBodyRate)}
}

// isUpload reports whether r stores a body: a PUT or POST with one.
func isUpload(r *http.Request) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodPost) && r.ContentLength != 0
}

// limitUploads answers 503 to an upload past max_uploads at once: each holds
// a temporary file, a goroutine and buffers until it ends.
func (s *Server) limitUploads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		max := int64(s.now().cfg.Limits.MaxUploads)
		if max <= 0 || !isUpload(r) {
			next.ServeHTTP(w, r)
			return
		}
		defer s.uploads.Add(-1)
		if s.uploads.Add(1) > max {
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Connection", "close") // the body is not read
			http.Error(w, "too many uploads in progress; try again later", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeMethod reports whether method changes nothing, so that a browser may
// send it from another site.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "PROPFIND":
		return true
	}
	return false
}

// crossSite reports whether r changes state on behalf of another site: a
// browser sends Sec-Fetch-Site or Origin with such requests (an HTML form
// can POST text/plain or multipart anywhere without a preflight). Kazoo and
// WebDAV clients send neither, so they always pass.
func (s *Server) crossSite(r *http.Request) bool {
	if safeMethod(r.Method) {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	case "same-origin", "none":
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" { // "null": a sandboxed or privacy-sensitive context
		return true
	}
	// An origin is a scheme and a host: http://host must not write to
	// https://host. Behind a proxy, the scheme is the one the client used.
	if strings.EqualFold(u.Host, s.publicHost) && strings.EqualFold(u.Scheme, s.publicScheme) {
		return false
	}
	return !strings.EqualFold(u.Host, r.Host) || !strings.EqualFold(u.Scheme, clientOf(r).Scheme)
}
