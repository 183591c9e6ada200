package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/attachd/attachd/server/auth"
)

// Sessions are stateless: the cookie carries the user's name, when the
// session began and when it was last used, signed with HMAC-SHA256. Any
// node holding the key accepts it (in a cluster the key is derived from
// [cluster] secret, so the balancer needs no stickiness), and nothing grows
// with the number of sessions. A session ends when it has been idle for
// session_idle (the cookie is re-signed as it is used), when it is older
// than session_max, when the user is removed from the configuration or
// given another password (the cookie's signature covers a digest of it), or
// when the key changes (without a cluster secret, at every restart). The
// user's root and permissions are read from the configuration at each
// request, never from the cookie.
const (
	sessionCookie = "attachd_session"
	loginCookie   = "attachd_login" // the login form's CSRF nonce
	// touchEvery is how stale the cookie's last-use time may get before it
	// is re-signed: not at every request.
	touchEvery = time.Minute
)

// session is a signed-in user.
type session struct {
	name   string
	issued time.Time
	seen   time.Time
	nonce  string // random per session: the CSRF token is derived from it
	user   *auth.User
}

// sessionKey derives the signing key from secret, or makes a random one.
func sessionKey(secret string) []byte {
	if secret == "" {
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("attachd ui session v1"))
	return m.Sum(nil)
}

func (h *Handler) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// encode returns the cookie value of s.
func (h *Handler) encode(s *session) string {
	payload := strings.Join([]string{s.name, strconv.FormatInt(s.issued.Unix(), 10),
		strconv.FormatInt(s.seen.Unix(), 10), s.nonce}, "\x00")
	var cred string
	if u, ok := h.users().Lookup(s.name); ok {
		cred = u.Credential
	}
	return b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(h.mac("session", payload, cred))
}

// decode checks a cookie value's signature and times at now, and finds its
// user; it returns nil for anything else.
func (h *Handler) decode(v string, now time.Time) *session {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return nil
	}
	payload, err1 := b64.DecodeString(p)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return nil
	}
	f := strings.Split(string(payload), "\x00")
	if len(f) != 4 {
		return nil
	}
	u, ok := h.users().Lookup(f[0])
	if !ok || !hmac.Equal(mac, h.mac("session", string(payload), u.Credential)) {
		return nil
	}
	issued, err1 := strconv.ParseInt(f[1], 10, 64)
	seen, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return nil
	}
	s := &session{name: f[0], issued: time.Unix(issued, 0), seen: time.Unix(seen, 0), nonce: f[3]}
	if now.Sub(s.seen) > h.idle || now.Sub(s.issued) > h.max || s.seen.After(now.Add(time.Minute)) {
		return nil
	}
	s.user = u
	return s
}

// current returns the request's session, re-signing its cookie when it was
// last touched a while ago, or nil.
func (h *Handler) current(w http.ResponseWriter, r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	now := h.now()
	s := h.decode(c.Value, now)
	if s != nil && now.Sub(s.seen) >= touchEvery {
		s.seen = now
		h.setCookie(w, r, sessionCookie, h.encode(s), h.max)
	}
	return s
}

// begin starts a session for name and sets its cookie.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, name string) {
	now := h.now()
	s := &session{name: name, issued: now, seen: now, nonce: randomHex()}
	h.setCookie(w, r, sessionCookie, h.encode(s), h.max)
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: h.secure || h.https(r), SameSite: http.SameSiteStrictMode})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure || h.https(r), SameSite: http.SameSiteStrictMode})
}

// csrf returns the token a session's forms carry.
func (h *Handler) csrf(s *session) string {
	return b64.EncodeToString(h.mac("csrf", s.name, s.nonce))
}

// checkCSRF reports whether a form's token is its session's.
func (h *Handler) checkCSRF(s *session, token string) bool {
	want := h.csrf(s)
	return hmac.Equal([]byte(token), []byte(want))
}

// loginToken returns the token of the login form given the nonce in the
// browser's login cookie (a double-submitted cookie: another site can
// neither read the cookie nor compute the token).
func (h *Handler) loginToken(nonce string) string {
	return b64.EncodeToString(h.mac("login", nonce))
}

func randomHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
