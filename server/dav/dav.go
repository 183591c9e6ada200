// Package dav serves attachd's store over WebDAV (RFC 4918, class 1 and 2).
//
// The tree at /dav/ is the store's: /dav/<key> is the object stored at <key>,
// folders are implied by keys or made by MKCOL. Every write goes through the
// store (atomic, fsync'd, indexed), locks and dead properties are kept in the
// store's index, and PROPFIND answers from one index listing per collection.
//
// The protocol layer is attachd's own rather than golang.org/x/net/webdav's
// Handler: x/net's PUT truncates in place and cannot tell an aborted upload
// from a finished one, its LockSystem cannot express shared locks, it ignores
// ETags and Not in If: headers, and its PROPFIND opens and stats every child
// (docs/webdav-clients.md §3.1–3.8). Each of those would have to be intercepted before
// x/net saw the request, leaving it nothing to do. The package still speaks
// x/net's vocabulary where it fits: If: conditions are webdav.Condition values.
package dav

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/store"
)

// Options configure a Handler.
type Options struct {
	Store *store.Store
	// Prefix is the path the handler is mounted at, without a trailing slash: "/dav".
	Prefix string
	// PublicURL is the base URL clients reach attachd's root at through a
	// reverse proxy, or "". Its path is put in front of every href, and
	// Destination and If: URLs on its host are accepted.
	PublicURL string
	ByDate    bool       // serve the read-only @by-date view
	HideJunk  JunkPolicy // "": JunkHide
	Log       *slog.Logger

	// Limits on what one client can make the handler parse and keep. Zero
	// takes the default (config's [limits] defaults); there is no "unlimited".
	MaxXMLBody    int64 // largest PROPFIND, PROPPATCH or LOCK body (413 past it)
	MaxXMLDepth   int   // deepest element nesting in such a body (400 past it)
	MaxProps      int   // dead properties per object or folder (507 past it)
	MaxPropsBytes int64 // their total size per object or folder (507 past it)
}

// Defaults of the limits in Options.
const (
	DefaultMaxXMLBody    = 1 << 20
	DefaultMaxXMLDepth   = 32
	DefaultMaxProps      = 128
	DefaultMaxPropsBytes = 64 << 10
)

// Handler is the WebDAV handler. The caller authenticates each request and
// puts the user in its context (auth.WithUser); only OPTIONS is answered
// without one.
type Handler struct {
	opts       Options
	st         *store.Store
	hrefPrefix string // path prefix of every href: public path + Prefix
	publicHost string
	log        *slog.Logger
	lists      *listCache
}

// New returns a Handler for opts.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("dav: no store")
	}
	h := &Handler{opts: opts, st: opts.Store, log: opts.Log}
	if h.log == nil {
		h.log = slog.Default()
	}
	switch opts.HideJunk {
	case "":
		h.opts.HideJunk = JunkHide
	case JunkOff, JunkHide, JunkRefuse:
	default:
		return nil, fmt.Errorf("dav: hide_junk: want %q, %q or %q, got %q", JunkOff, JunkHide, JunkRefuse, opts.HideJunk)
	}
	if h.opts.MaxXMLBody <= 0 {
		h.opts.MaxXMLBody = DefaultMaxXMLBody
	}
	if h.opts.MaxXMLDepth <= 0 {
		h.opts.MaxXMLDepth = DefaultMaxXMLDepth
	}
	if h.opts.MaxProps <= 0 {
		h.opts.MaxProps = DefaultMaxProps
	}
	if h.opts.MaxPropsBytes <= 0 {
		h.opts.MaxPropsBytes = DefaultMaxPropsBytes
	}
	h.lists = newListCache(opts.Store, h.maxRawProps())
	h.opts.Prefix = strings.TrimRight(opts.Prefix, "/")
	h.hrefPrefix = h.opts.Prefix
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("dav: public_url %q is not an absolute URL", opts.PublicURL)
		}
		h.publicHost = u.Host
		h.hrefPrefix = strings.TrimRight(u.EscapedPath(), "/") + h.opts.Prefix
	}
	return h, nil
}

// maxRawProps is the largest stored form (JSON) that dead properties within
// MaxProps and MaxPropsBytes can take: JSON writes each of <, > and & in
// 6 bytes, and each property adds its field names. Properties stored
// before the limits existed may be bigger; PROPFIND leaves those out (and
// logs it) rather than hold them in memory for every listing, and a
// PROPPATCH that removes some still works.
func (h *Handler) maxRawProps() int {
	return 6*int(h.opts.MaxPropsBytes) + 64*h.opts.MaxProps
}

// Close releases what the handler holds in the store. Close it before the store.
func (h *Handler) Close() error { return h.lists.watch.Close() }

// Trim empties the cache of listings if the index has changed since they
// were read or none was asked for lately (listCache.trim). The server calls
// it when requests stop.
func (h *Handler) Trim(ctx context.Context) { h.lists.trim(ctx, time.Now()) }

// request is one request being served, with its target resolved.
type request struct {
	h   *Handler
	w   http.ResponseWriter
	r   *http.Request
	u   *auth.User
	rel string // the target's key relative to the user's root
	key string // the target's key in the store
	// view is set when the target is in the @by-date view: key is then
	// meaningless and view names the virtual resource.
	view *viewPath
}

// ServeHTTP implements http.Handler. Every error of a request is answered
// here, by fail: a method's handler returns its error before it has written
// anything, and writes only the answers that are not errors (including 207).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		// Answered before anything is looked up: Windows' mini-redirector
		// sends its first OPTIONS without credentials (docs/webdav-clients.md §4.1).
		h.options(w, r)
		return
	}
	u := auth.FromContext(r.Context())
	if u == nil {
		auth.Challenge(w)
		return
	}
	q := &request{h: h, w: w, r: r, u: u}
	if err := q.serve(); err != nil {
		q.fail(err)
	}
}

// serve resolves the request's target and runs its method's handler.
func (q *request) serve() error {
	rel, view, err := q.h.resolve(q.r.URL.EscapedPath())
	if err != nil {
		return err
	}
	q.rel, q.key, q.view = rel, q.u.Key(rel), view
	if err := q.mayWrite(); err != nil {
		return err
	}
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		return q.get()
	case http.MethodPut:
		return q.put()
	case http.MethodDelete:
		return q.delete()
	case "MKCOL":
		return q.mkcol()
	case "COPY", "MOVE":
		return q.copyMove(q.r.Method == "MOVE")
	case "PROPFIND":
		return q.propfind()
	case "PROPPATCH":
		return q.proppatch()
	case "LOCK":
		return q.lock()
	case "UNLOCK":
		return q.unlock()
	}
	q.w.Header().Set("Allow", allowed)
	http.Error(q.w, "method not allowed", http.StatusMethodNotAllowed)
	return nil
}

// mayWrite refuses a method that writes to a read-only user, and inside the
// @by-date view to everything but a COPY out of it.
func (q *request) mayWrite() error {
	if !isWrite(q.r.Method) {
		return nil
	}
	if !q.u.Write {
		return errReadOnlyUser
	}
	if q.view != nil && q.r.Method != "COPY" {
		return errReadOnlyView
	}
	return nil
}

// allowed is the Allow header, without spaces for the same clients as DAV.
const allowed = "OPTIONS,GET,HEAD,PUT,DELETE,MKCOL,COPY,MOVE,PROPFIND,PROPPATCH,LOCK,UNLOCK"

func isWrite(method string) bool {
	switch method {
	case http.MethodPut, http.MethodDelete, "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK":
		return true
	}
	return false
}

func (h *Handler) options(w http.ResponseWriter, r *http.Request) {
	// Comma-separated without spaces, as Apache writes it: hdav splits the
	// value on "," and does not trim what it gets.
	w.Header().Set("DAV", "1,2")
	w.Header().Set("Allow", allowed)
	// Office and Windows look for this before they treat the server as WebDAV.
	w.Header().Set("MS-Author-Via", "DAV")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// resolve turns the escaped path of a request (or of a Destination or If:
// URL, once stripped to its path) into a key relative to the user's root,
// with store.CanonicalPath, the one canonicaliser. A path in the @by-date
// view also returns the view position.
func (h *Handler) resolve(escaped string) (string, *viewPath, error) {
	rest, ok := strings.CutPrefix(escaped, h.opts.Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", nil, errOutside
	}
	rel, err := store.CanonicalPath(rest)
	if err != nil {
		return "", nil, err
	}
	if h.opts.ByDate {
		if v, ok := parseViewPath(rel); ok {
			return rel, v, nil
		}
	}
	return rel, nil, nil
}

// resolveURL resolves an absolute URL or absolute path sent in a
// Destination header or an If: resource tag. A URL on another host than the
// request's or the public URL's is errOtherServer (RFC 4918 §9.8.5: 502).
func (h *Handler) resolveURL(r *http.Request, raw string) (string, *viewPath, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", nil, fmt.Errorf("%w: bad URL %q", errBadRequest, raw)
	}
	p := u.EscapedPath()
	if u.Host != "" {
		switch {
		case h.publicHost != "" && strings.EqualFold(u.Host, h.publicHost):
			// Behind a reverse proxy the client names the public host
			// and path (hacdias/webdav #59, #228): map it back to ours.
			pub := strings.TrimSuffix(h.hrefPrefix, h.opts.Prefix)
			if !strings.HasPrefix(p, pub+"/") {
				return "", nil, errOtherServer
			}
			p = p[len(pub):]
		case strings.EqualFold(u.Host, r.Host):
		default:
			return "", nil, errOtherServer
		}
	} else if !strings.HasPrefix(p, "/") {
		return "", nil, fmt.Errorf("%w: URL %q is not absolute", errBadRequest, raw)
	}
	rel, view, err := h.resolve(p)
	if errors.Is(err, errOutside) {
		err = errOtherServer
	}
	return rel, view, err
}

// href returns the escaped URL path of the store key for the user, with a
// trailing slash for a collection, and whether the key is within the user's
// root at all.
func (q *request) href(key string, dir bool) (string, bool) {
	rel, ok := q.u.Inside(key)
	if !ok {
		return "", false
	}
	return q.h.relHref(rel, dir), true
}

// relHref returns the escaped URL path of a user-relative key.
func (h *Handler) relHref(rel string, dir bool) string {
	b := make([]byte, 0, len(h.hrefPrefix)+len(rel)+8)
	b = append(b, h.hrefPrefix...)
	b = append(b, '/')
	b = appendEscapedKey(b, rel)
	if dir && rel != "" {
		b = append(b, '/')
	}
	return string(b)
}

// appendEscapedKey appends a key as a URL path: each segment decoded from the
// key's escaping, then percent-encoded for a URL.
func appendEscapedKey(b []byte, key string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '%' && i+2 < len(key) {
			// The key's own escape (store.EscapeSegment): the same %XX in a URL.
			b = append(b, key[i:i+3]...)
			i += 2
			continue
		}
		if urlSafe(c) || c == '/' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return b
}

func urlSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}
