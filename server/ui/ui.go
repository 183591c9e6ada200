// Package ui is the voicemail browser at /ui/: a sign-in for the configured
// users, an inbox of voicemails, call recordings and faxes by account and
// mailbox, a search by caller, mailbox, account, date and type, and a player
// with the Kazoo document's fields. Pages are rendered on the server from
// embedded templates, with one embedded style sheet and one script (no
// inline script, nothing fetched from elsewhere), and read the index only
// (store.Search); the bytes stream with ranges from the store, and
// deletes and moves go through it, so that hooks, quotas and backends apply.
package ui

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/status"
	"github.com/attachd/attachd/server/store"
)

// Prefix is where the browser is served.
const Prefix = "/ui/"

// csp lets the pages load their own style sheet, script and media, and
// nothing else: no inline script or style, no frames, forms only to here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Handler.
type Options struct {
	Store *store.Store
	// Auth returns the users and allow-list in force: a reload of the
	// configuration replaces them.
	Auth func() *auth.Authenticator
	Log  *slog.Logger
	// SessionIdle ends a session unused this long; SessionMax any session
	// this old.
	SessionIdle, SessionMax time.Duration
	// Secret signs the session cookies; empty: a random key, so that every
	// session ends when the process does. In a cluster, [cluster] secret.
	Secret string
	// SecureCookies marks cookies Secure even on plain HTTP: the server is
	// behind a TLS-terminating proxy (public_url is https).
	SecureCookies bool
	// HTTPS, if set, reports whether the client used HTTPS to send r (a
	// trusted proxy says so); cookies sent to it are Secure. Without it,
	// r.TLS decides.
	HTTPS func(r *http.Request) bool
	// PageSize is how many messages a page lists.
	PageSize int
	// SignedIn, if set, is told the user of each request a session admits
	// (and of each sign-in), so that the access log can name it.
	SignedIn func(w http.ResponseWriter, user string)
}

// Handler serves the browser below Prefix.
type Handler struct {
	st       *store.Store
	users    func() *auth.Authenticator
	log      *slog.Logger
	idle     time.Duration
	max      time.Duration
	key      []byte
	secure   bool
	https    func(*http.Request) bool
	pageSize int
	signedIn func(w http.ResponseWriter, user string)
	pages    map[string]*template.Template
	static   http.Handler
	now      func() time.Time
}

// New returns a Handler.
func New(o Options) (*Handler, error) {
	h := &Handler{st: o.Store, users: o.Auth, log: o.Log, idle: o.SessionIdle, max: o.SessionMax,
		key: sessionKey(o.Secret), secure: o.SecureCookies, https: o.HTTPS, pageSize: o.PageSize, now: time.Now,
		signedIn: o.SignedIn, pages: map[string]*template.Template{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.https == nil {
		h.https = func(r *http.Request) bool { return r.TLS != nil }
	}
	if h.signedIn == nil {
		h.signedIn = func(http.ResponseWriter, string) {}
	}
	for _, name := range []string{"login", "inbox", "player", "confirm", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		h.pages[name] = t
	}
	sub, _ := fs.Sub(staticFS, "static")
	h.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("X-Frame-Options", "DENY")
	p := r.URL.Path
	switch {
	case p == "/ui":
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	case strings.HasPrefix(p, Prefix+"static/"):
		w.Header().Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
		return
	case p == Prefix+"login":
		h.login(w, r)
		return
	}
	s := h.current(w, r)
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if s == nil && get && !h.users().Enabled() {
		// No users configured: everyone is the anonymous user, as on the
		// other routes; the session still carries the CSRF nonce.
		h.begin(w, r, "")
		http.Redirect(w, r, r.URL.RequestURI(), http.StatusSeeOther)
		return
	}
	if s == nil {
		if get {
			http.Redirect(w, r, Prefix+"login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.fail(w, r, nil, http.StatusUnauthorized, "your session has ended: sign in again")
		return
	}
	h.signedIn(w, s.name)
	h.route(w, r, s, strings.TrimPrefix(p, Prefix))
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, s *session, page string) {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case page == "" && get:
		h.inbox(w, r, s)
	case page == "play" && get:
		h.player(w, r, s)
	case page == "media" && get:
		h.media(w, r, s)
	case (page == "delete" || page == "move") && get:
		h.confirm(w, r, s, page)
	case page == "delete" && r.Method == http.MethodPost:
		h.change(w, r, s, h.delete)
	case page == "move" && r.Method == http.MethodPost:
		h.change(w, r, s, h.move)
	case page == "logout" && r.Method == http.MethodPost:
		h.logout(w, r, s)
	case page == "" || page == "play" || page == "media" || page == "delete" || page == "move" || page == "logout":
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.fail(w, r, s, http.StatusMethodNotAllowed, "method not allowed")
	default:
		h.fail(w, r, s, http.StatusNotFound, "no such page")
	}
}

// failErr renders an error page for err, with the status the other routes
// give it (server/status); it is logged when the fault is the server's.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code, msg := status.Of(err)
	switch {
	case errors.Is(err, store.ErrInvalidKey):
		code, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, errLocked):
		code, msg = http.StatusLocked, err.Error()
	case code >= 500:
		h.log.Error("ui request failed", "path", r.URL.Path, "err", err)
	}
	h.fail(w, r, s, code, msg)
}

// fail renders an error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	h.render(w, r, s, code, "error", map[string]any{"Code": code, "Status": http.StatusText(code), "Message": msg})
}

// render writes the page name with data; s may be nil (signed out).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, s *session, code int, name string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	if s != nil {
		data["User"] = s.user
		data["UserName"] = s.name
		data["CSRF"] = h.csrf(s)
		data["SignedIn"] = true
		data["Anonymous"] = !h.users().Enabled()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	if err := h.pages[name].Execute(w, data); err != nil {
		h.log.Warn("ui: render", "page", name, "err", err)
	}
}
