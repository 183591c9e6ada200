package ui

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/attachd/attachd/server/auth"
)

// maxForm bounds the body of a form: sign-in, sign-out, delete, move.
const maxForm = 4 << 10

// login shows the sign-in form (GET) or checks it (POST) against the
// configured users, through the same checks and failed-login limiter as
// Basic auth on the other routes.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !h.users().Enabled() || h.current(w, r) != nil {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		h.loginForm(w, r, next, http.StatusOK, "")
	case http.MethodPost:
		h.loginPost(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.fail(w, r, nil, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request, next string, code int, msg string) {
	nonce := randomHex()
	h.setCookie(w, r, loginCookie, nonce, time.Hour)
	h.render(w, r, nil, code, "login", map[string]any{"Next": next, "Token": h.loginToken(nonce), "Error": msg})
}

func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, nil, http.StatusBadRequest, "malformed sign-in form")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	c, err := r.Cookie(loginCookie)
	if err != nil || r.PostForm.Get("token") != h.loginToken(c.Value) {
		h.loginForm(w, r, next, http.StatusForbidden, "The sign-in form expired; please try again.")
		return
	}
	// The form's credentials, checked as Basic auth would be.
	check := r.Clone(r.Context())
	check.Header = http.Header{}
	check.SetBasicAuth(r.PostForm.Get("user"), r.PostForm.Get("password"))
	u, err := h.users().Authenticate(check)
	var rl *auth.RateLimitError
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rl.RetryAfter.Seconds()))))
		h.loginForm(w, r, next, http.StatusTooManyRequests, "Too many failed sign-ins; try again later.")
		return
	case errors.Is(err, auth.ErrAddress):
		h.fail(w, r, nil, http.StatusForbidden, "client address not allowed")
		return
	case err != nil:
		h.loginForm(w, r, next, http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	h.clearCookie(w, r, loginCookie)
	h.begin(w, r, u.Name)
	h.signedIn(w, u.Name)
	h.log.Info("ui: signed in", "user", u.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if r.ParseForm() != nil || !h.checkCSRF(s, r.PostForm.Get("csrf")) {
		h.fail(w, r, s, http.StatusForbidden, "the form's token is missing or stale: reload the page and try again")
		return
	}
	h.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// safeNext returns where to go after signing in: a page of the browser,
// never another site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, Prefix) ||
		strings.HasPrefix(next, "//") || strings.Contains(next, "\\") || strings.HasPrefix(u.Path, Prefix+"login") {
		return Prefix
	}
	return u.RequestURI()
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
