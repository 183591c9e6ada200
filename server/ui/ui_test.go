package ui

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/store"
)

const acctA = "4e3005310add6229778caf6babfe7cfb"
const acctB = "0badc0ffee0badc0ffee0badc0ffee00"

type fixture struct {
	t   *testing.T
	st  *store.Store
	h   *Handler
	srv *httptest.Server
	now time.Time
}

// newFixture starts the browser over a store holding a few voicemails, for
// users rw (everything), ro (read-only, everything) and acme (account A only,
// rw).
// pwHash is the hash of "pw" every fixture's users have, as nodes of one
// cluster share one configuration.
var pwHash = sync.OnceValue(func() []byte {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	return hash
})

func newFixture(t *testing.T, tls bool, mutate ...func(*Options)) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash := pwHash()
	a, err := auth.New([]auth.Account{
		{Name: "rw", PasswordHash: string(hash), Root: "/", Write: true},
		{Name: "ro", PasswordHash: string(hash), Root: "/"},
		{Name: "acme", PasswordHash: string(hash), Root: "/kazoo/" + acctA, Write: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Store: st, Auth: func() *auth.Authenticator { return a }, Log: slog.New(slog.DiscardHandler), SessionIdle: 30 * time.Minute,
		SessionMax: 12 * time.Hour, PageSize: 50}
	for _, m := range mutate {
		m(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, h: h, now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	h.now = func() time.Time { return f.now }
	if tls {
		f.srv = httptest.NewTLSServer(h)
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	day := time.Date(2025, 5, 20, 9, 0, 0, 0, time.UTC)
	f.put("kazoo/"+acctA+"/vm1.mp3", "audio/mpeg", "Alice Smith", "+15551230001", "1001", day, "AAAAAAAAAABBBBBBBBBBCCCCCCCCCC")
	f.put("kazoo/"+acctA+"/vm2.mp3", "audio/mpeg", "Bob <script>alert(1)</script>", "+15551230002", "1002", day.Add(time.Hour), "bob")
	f.put("kazoo/"+acctB+"/vm3.mp3", "audio/mpeg", "Carol", "+15559990003", "2001", day.Add(2*time.Hour), "carol")
	f.put("kazoo/"+acctB+"/page.html", "text/html", "Mallory", "+1666", "2001", day.Add(3*time.Hour), "<script>alert(1)</script>")
	return f
}

func (f *fixture) put(key, ct, name, number, mailbox string, at time.Time, body string) {
	f.t.Helper()
	meta, _ := json.Marshal(map[string]any{"document": map[string]any{"caller_id_name": name, "caller_id_number": number,
		"mailbox": mailbox, "timestamp": at.Unix() + 62167219200, "length": 3000, "<b>field</b>": "<i>value</i>"}})
	if _, err := f.st.Put(context.Background(), key, strings.NewReader(body), store.Info{ContentType: ct, Size: int64(len(body)), Meta: meta}); err != nil {
		f.t.Fatal(err)
	}
}

// client returns a browser: cookies kept, redirects not followed.
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *f.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

type page struct {
	code int
	body string
	resp *http.Response
}

func (f *fixture) get(c *http.Client, path string, header ...string) page {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return f.do(c, req)
}

func (f *fixture) post(c *http.Client, path string, form url.Values) page {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return f.do(c, req)
}

func (f *fixture) do(c *http.Client, req *http.Request) page {
	f.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, string(b), resp}
}

var (
	tokenRe = regexp.MustCompile(`name="token" value="([^"]+)"`)
	csrfRe  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %v in page:\n%s", re, body)
	}
	return m[1]
}

// signIn signs user in with a new client.
func (f *fixture) signIn(user string) *http.Client {
	f.t.Helper()
	c := f.client()
	p := f.get(c, "/ui/login")
	p = f.post(c, "/ui/login", url.Values{"user": {user}, "password": {"pw"}, "token": {field(f.t, tokenRe, p.body)}})
	if p.code != http.StatusSeeOther {
		f.t.Fatalf("sign in as %s: %d %s", user, p.code, p.body)
	}
	return c
}

func (f *fixture) csrf(c *http.Client) string {
	return field(f.t, csrfRe, f.get(c, "/ui/").body)
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, false)
	c := f.client()
	p := f.get(c, "/ui/?q=alice")
	if p.code != http.StatusSeeOther || p.resp.Header.Get("Location") != "/ui/login?next=%2Fui%2F%3Fq%3Dalice" {
		t.Fatalf("signed out: %d %q", p.code, p.resp.Header.Get("Location"))
	}
	p = f.get(c, "/ui/login?next=%2Fui%2F%3Fq%3Dalice")
	if p.code != 200 || !strings.Contains(p.body, `name="next" value="/ui/?q=alice"`) {
		t.Fatalf("login form: %d %s", p.code, p.body)
	}
	token := field(t, tokenRe, p.body)
	// Without the login cookie's token: refused, nothing signed in.
	if p := f.post(f.client(), "/ui/login", url.Values{"user": {"rw"}, "password": {"pw"}, "token": {token}}); p.code != http.StatusForbidden {
		t.Errorf("token without its cookie: %d", p.code)
	}
	if p := f.post(c, "/ui/login", url.Values{"user": {"rw"}, "password": {"nope"}, "token": {token}}); p.code != http.StatusUnauthorized ||
		!strings.Contains(p.body, "Wrong user name or password") {
		t.Errorf("wrong password: %d", p.code)
	}
	p = f.get(c, "/ui/login")
	p = f.post(c, "/ui/login", url.Values{"user": {"rw"}, "password": {"pw"}, "token": {field(t, tokenRe, p.body)},
		"next": {"/ui/?q=alice"}})
	if p.code != http.StatusSeeOther || p.resp.Header.Get("Location") != "/ui/?q=alice" {
		t.Fatalf("sign in: %d %q %s", p.code, p.resp.Header.Get("Location"), p.body)
	}
	var sc *http.Cookie
	for _, ck := range p.resp.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/ui/" || sc.Secure {
		t.Fatalf("session cookie: %+v", sc)
	}
	p = f.get(c, "/ui/?q=alice")
	if p.code != 200 || !strings.Contains(p.body, "Alice Smith") || strings.Contains(p.body, "Carol") {
		t.Fatalf("inbox: %d %s", p.code, p.body)
	}
	// Sign out: the cookie is cleared, and a POST needs the form's token.
	if p := f.post(c, "/ui/logout", url.Values{"csrf": {"forged"}}); p.code != http.StatusForbidden {
		t.Errorf("logout with a forged token: %d", p.code)
	}
	if p := f.post(c, "/ui/logout", url.Values{"csrf": {f.csrf(c)}}); p.code != http.StatusSeeOther {
		t.Errorf("logout: %d", p.code)
	}
	if p := f.get(c, "/ui/"); p.code != http.StatusSeeOther {
		t.Errorf("after logout: %d", p.code)
	}
}

func TestNextStaysOnSite(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/play?p=a":             "/ui/play?p=a",
		"https://evil.example/ui/": "/ui/",
		"//evil.example/ui/":       "/ui/",
		"/dav/":                    "/ui/",
		"/ui/login":                "/ui/",
		"/ui\\..\\x":               "/ui/",
		"":                         "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, false)
	c := f.signIn("rw")
	f.now = f.now.Add(29 * time.Minute)
	if p := f.get(c, "/ui/"); p.code != 200 {
		t.Fatalf("within idle time: %d", p.code)
	}
	// That use re-signed the cookie: the idle time counts from it.
	f.now = f.now.Add(29 * time.Minute)
	if p := f.get(c, "/ui/"); p.code != 200 {
		t.Fatalf("used again within idle time: %d", p.code)
	}
	f.now = f.now.Add(31 * time.Minute)
	if p := f.get(c, "/ui/"); p.code != http.StatusSeeOther {
		t.Fatalf("idle too long: %d", p.code)
	}
	// However busy, a session ends at session_max.
	c = f.signIn("rw")
	for range 12*2 + 1 {
		f.now = f.now.Add(29 * time.Minute)
		f.get(c, "/ui/")
	}
	if p := f.get(c, "/ui/"); p.code != http.StatusSeeOther {
		t.Fatalf("older than session_max: %d", p.code)
	}
}

func TestForgedSessionRefused(t *testing.T) {
	f := newFixture(t, false)
	other := newFixture(t, false) // another key, as another attachd without the cluster secret
	good := f.h.encode(&session{name: "rw", issued: f.now, seen: f.now, nonce: "n"})
	for name, v := range map[string]string{
		"other key":    other.h.encode(&session{name: "rw", issued: f.now, seen: f.now, nonce: "n"}),
		"renamed":      strings.Replace(good, b64.EncodeToString([]byte("rw")), b64.EncodeToString([]byte("ro")), 1),
		"no signature": strings.Split(good, ".")[0],
		"garbage":      "x.y",
		"gone user":    f.h.encode(&session{name: "nobody", issued: f.now, seen: f.now, nonce: "n"}),
	} {
		if f.h.decode(v, f.now) != nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if f.h.decode(good, f.now) == nil {
		t.Error("good cookie refused")
	}
	// A new password (a reload of [[users]]) ends the user's sessions.
	hash, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	renewed, err := auth.New([]auth.Account{{Name: "rw", PasswordHash: string(hash), Root: "/", Write: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.h.users = func() *auth.Authenticator { return renewed }
	if f.h.decode(good, f.now) != nil {
		t.Error("a session begun under the old password outlived the new one")
	}
	// With one cluster secret, every node accepts the others' sessions.
	a := newFixture(t, false, func(o *Options) { o.Secret = "s3cret" })
	b := newFixture(t, false, func(o *Options) { o.Secret = "s3cret" })
	if b.h.decode(a.h.encode(&session{name: "rw", issued: a.now, seen: a.now, nonce: "n"}), a.now) == nil {
		t.Error("a session of another node with the same secret refused")
	}
}

func TestSecureCookieOnTLS(t *testing.T) {
	f := newFixture(t, true)
	c := f.client()
	p := f.get(c, "/ui/login")
	for _, ck := range p.resp.Cookies() {
		if !ck.Secure {
			t.Errorf("cookie %s not Secure on TLS", ck.Name)
		}
	}
	f3 := newFixture(t, false, func(o *Options) {
		o.HTTPS = func(r *http.Request) bool { return r.Header.Get("X-Test-Proto") == "https" }
	})
	for _, ck := range f3.get(f3.client(), "/ui/login", "X-Test-Proto", "https").resp.Cookies() {
		if !ck.Secure {
			t.Errorf("cookie %s not Secure for a client a proxy says used HTTPS", ck.Name)
		}
	}
	f2 := newFixture(t, false, func(o *Options) { o.SecureCookies = true })
	for _, ck := range f2.get(f2.client(), "/ui/login").resp.Cookies() {
		if !ck.Secure {
			t.Errorf("cookie %s not Secure behind an https public_url", ck.Name)
		}
	}
}

func TestOversizeFormRefused(t *testing.T) {
	f := newFixture(t, false)
	c := f.client()
	p := f.get(c, "/ui/login")
	form := url.Values{"user": {"rw"}, "password": {strings.Repeat("x", maxForm)}, "token": {field(t, tokenRe, p.body)}}
	if p := f.post(c, "/ui/login", form); p.code != http.StatusBadRequest || !strings.Contains(p.body, "malformed sign-in form") {
		t.Errorf("a sign-in form over %d bytes: %d", maxForm, p.code)
	}
	c = f.signIn("rw")
	form = url.Values{"csrf": {f.csrf(c)}, "p": {"kazoo/" + acctA + "/vm1.mp3"}, "to": {strings.Repeat("x/", maxForm)}}
	if p := f.post(c, "/ui/move", form); p.code != http.StatusBadRequest {
		t.Errorf("a move form over %d bytes: %d", maxForm, p.code)
	}
	if _, err := f.st.Stat(context.Background(), "kazoo/"+acctA+"/vm1.mp3"); err != nil {
		t.Errorf("the refused move changed something: %v", err)
	}
}

func TestFailedSignInsLimited(t *testing.T) {
	f := newFixture(t, false)
	f.h.users().LimitFailures(2)
	c := f.client()
	var last page
	for range 3 {
		p := f.get(c, "/ui/login")
		last = f.post(c, "/ui/login", url.Values{"user": {"rw"}, "password": {"bad"}, "token": {field(t, tokenRe, p.body)}})
	}
	if last.code != http.StatusTooManyRequests || last.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third failure: %d %v", last.code, last.resp.Header)
	}
}

func TestRootConfines(t *testing.T) {
	f := newFixture(t, false)
	c := f.signIn("acme")
	p := f.get(c, "/ui/")
	if !strings.Contains(p.body, "Alice Smith") || strings.Contains(p.body, "Carol") || strings.Contains(p.body, acctB) {
		t.Fatalf("acme's inbox shows another account:\n%s", p.body)
	}
	// Paths are below the root, whatever they say.
	for _, path := range []string{
		"/ui/play?p=vm1.mp3", "/ui/media?p=vm1.mp3",
	} {
		if p := f.get(c, path); p.code != 200 {
			t.Errorf("%s: %d", path, p.code)
		}
	}
	for _, path := range []string{
		"/ui/play?p=../" + acctB + "/vm3.mp3", "/ui/media?p=%2e%2e/" + acctB + "/vm3.mp3",
		"/ui/media?p=/kazoo/" + acctB + "/vm3.mp3", "/ui/play?p=", "/ui/media?p=..%2F..%2Fetc%2Fpasswd",
	} {
		if p := f.get(c, path); p.code != http.StatusBadRequest && p.code != http.StatusNotFound {
			t.Errorf("%s: %d, want 400 or 404", path, p.code)
		}
	}
	// A cursor naming another account's key stays below the root too.
	if p := f.get(c, "/ui/?before=9999999999999999999."+acctB); p.code != 200 && p.code != 400 {
		t.Errorf("cursor: %d", p.code)
	}
	if p := f.get(c, "/ui/?before=1.../x"); p.code != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", p.code)
	}
	// A move cannot leave the root either.
	form := url.Values{"csrf": {f.csrf(c)}, "p": {"vm1.mp3"}, "to": {"../" + acctB + "/stolen.mp3"}}
	if p := f.post(c, "/ui/move", form); p.code != http.StatusBadRequest {
		t.Errorf("move out of the root: %d %s", p.code, p.body)
	}
	if _, err := f.st.Stat(context.Background(), "kazoo/"+acctA+"/vm1.mp3"); err != nil {
		t.Errorf("the refused move changed something: %v", err)
	}
}

func TestReadOnlyCannotChange(t *testing.T) {
	f := newFixture(t, false)
	c := f.signIn("ro")
	p := f.get(c, "/ui/play?p=kazoo/"+acctA+"/vm1.mp3")
	if p.code != 200 || strings.Contains(p.body, `id="delete"`) || strings.Contains(p.body, `id="move"`) || !strings.Contains(p.body, "read-only") {
		t.Fatalf("read-only player: %d", p.code)
	}
	if p := f.get(c, "/ui/delete?p=kazoo/"+acctA+"/vm1.mp3"); p.code != http.StatusForbidden {
		t.Errorf("delete form for ro: %d", p.code)
	}
	csrf := f.csrf(c)
	for _, action := range []string{"delete", "move"} {
		p := f.post(c, "/ui/"+action, url.Values{"csrf": {csrf}, "p": {"kazoo/" + acctA + "/vm1.mp3"}, "to": {"x.mp3"}})
		if p.code != http.StatusForbidden || !strings.Contains(p.body, "read-only") {
			t.Errorf("%s as ro: %d", action, p.code)
		}
	}
	if _, err := f.st.Stat(context.Background(), "kazoo/"+acctA+"/vm1.mp3"); err != nil {
		t.Errorf("refused changes changed something: %v", err)
	}
}

func TestDeleteAndMove(t *testing.T) {
	f := newFixture(t, false)
	c := f.signIn("rw")
	key := "kazoo/" + acctA + "/vm1.mp3"
	p := f.get(c, "/ui/delete?p="+key)
	if p.code != 200 || !strings.Contains(p.body, "Delete this message?") {
		t.Fatalf("confirmation: %d", p.code)
	}
	// Without the form's token nothing happens.
	for _, tok := range []string{"", "forged"} {
		if p := f.post(c, "/ui/delete", url.Values{"csrf": {tok}, "p": {key}}); p.code != http.StatusForbidden {
			t.Errorf("delete with token %q: %d", tok, p.code)
		}
	}
	// Another user's token is no good either.
	if p := f.post(c, "/ui/delete", url.Values{"csrf": {f.csrf(f.signIn("acme"))}, "p": {key}}); p.code != http.StatusForbidden {
		t.Errorf("delete with another session's token: %d", p.code)
	}
	if _, err := f.st.Stat(context.Background(), key); err != nil {
		t.Fatalf("refused deletes deleted: %v", err)
	}
	csrf := field(t, csrfRe, p.body)
	p = f.post(c, "/ui/delete", url.Values{"csrf": {csrf}, "p": {key}})
	if p.code != http.StatusSeeOther || p.resp.Header.Get("Location") != "/ui/?done=deleted" {
		t.Fatalf("delete: %d %s", p.code, p.body)
	}
	if _, err := f.st.Stat(context.Background(), key); err == nil {
		t.Error("still there after delete")
	}
	if p := f.get(c, "/ui/?done=deleted"); !strings.Contains(p.body, "The message was deleted.") {
		t.Error("no notice after delete")
	}
	// Move, then refuse to move onto an existing message.
	src, dst := "kazoo/"+acctA+"/vm2.mp3", "kazoo/"+acctA+"/saved/vm2.mp3"
	p = f.post(c, "/ui/move", url.Values{"csrf": {csrf}, "p": {src}, "to": {dst}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("move: %d %s", p.code, p.body)
	}
	if _, err := f.st.Stat(context.Background(), dst); err != nil {
		t.Errorf("moved message: %v", err)
	}
	p = f.post(c, "/ui/move", url.Values{"csrf": {csrf}, "p": {dst}, "to": {"kazoo/" + acctB + "/vm3.mp3"}})
	if p.code < 400 {
		t.Errorf("move onto an existing message: %d", p.code)
	}
	if p := f.post(c, "/ui/delete", url.Values{"csrf": {csrf}, "p": {"kazoo/nothing.mp3"}}); p.code != http.StatusNotFound {
		t.Errorf("delete of nothing: %d", p.code)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t, false, func(o *Options) { o.PageSize = 2 })
	c := f.signIn("rw")
	rows := func(p page) []string {
		return regexp.MustCompile(`<span class="name">([^<]*)`).FindAllString(p.body, -1)
	}
	for _, tc := range []struct {
		query string
		want  int
		has   string
	}{
		{"q=alice", 1, "Alice Smith"},
		{"q=555999", 1, "Carol"},
		{"mailbox=1002", 1, "Bob"},
		{"account=" + acctB, 2, "Carol"},
		{"kind=mailbox_message&q=%2B1555123", 2, "Alice"},
		{"type=text/", 1, "Mallory"},
		{"from=2025-05-20&to=2025-05-20&tz=0&q=alice", 1, "Alice"},
		{"from=2025-05-21&tz=0", 0, "No messages match"},
		// Days are the browser's: 09:00 UTC on 20 May is 23:00 on the 19th at UTC−10.
		{"from=2025-05-20&to=2025-05-20&tz=-600&q=alice", 0, "No messages match"},
		{"from=2025-05-19&to=2025-05-19&tz=-600&q=alice", 1, "Alice"},
	} {
		p := f.get(c, "/ui/?"+tc.query)
		if p.code != 200 || len(rows(p)) != tc.want || !strings.Contains(p.body, tc.has) {
			t.Errorf("%s: %d, %d rows %q, want %d with %q", tc.query, p.code, len(rows(p)), rows(p), tc.want, tc.has)
		}
	}
	for query, msg := range map[string]string{
		"kind=memo":                     "kind: want",
		"from=20-05-2025":               "from: want a date",
		"tz=99999":                      "tz: want minutes",
		"q=" + strings.Repeat("x", 201): "q: at most 200 bytes",
		"before=x":                      "before: malformed",
	} {
		if p := f.get(c, "/ui/?"+query); p.code != http.StatusBadRequest || !strings.Contains(p.body, msg) {
			t.Errorf("%s: %d, want 400 with %q", query, p.code, msg)
		}
	}
	// Pages of two, newest first, by the Older link.
	var seen []string
	next := "/ui/"
	for next != "" {
		p := f.get(c, next)
		seen = append(seen, rows(p)...)
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" id="older"`).FindStringSubmatch(p.body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 4 || !strings.Contains(seen[0], "Mallory") || !strings.Contains(seen[3], "Alice") {
		t.Errorf("pages: %q", seen)
	}
	// Accounts and mailboxes narrow the inbox.
	p := f.get(c, "/ui/?account="+acctA)
	if !strings.Contains(p.body, "<h2>Mailboxes</h2>") || !strings.Contains(p.body, ">1001</a>") {
		t.Errorf("mailboxes of account A missing")
	}
}

func TestMediaStreamsWithRanges(t *testing.T) {
	f := newFixture(t, false)
	c := f.signIn("rw")
	p := f.get(c, "/ui/media?p=kazoo/"+acctA+"/vm1.mp3", "Range", "bytes=10-19")
	if p.code != http.StatusPartialContent || p.body != "BBBBBBBBBB" || p.resp.Header.Get("Content-Type") != "audio/mpeg" ||
		p.resp.Header.Get("Content-Range") != "bytes 10-19/30" {
		t.Fatalf("range: %d %q %v", p.code, p.body, p.resp.Header)
	}
	if p := f.get(c, "/ui/media?p=kazoo/"+acctA+"/vm1.mp3&download=1"); !strings.HasPrefix(p.resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("download: %q", p.resp.Header.Get("Content-Disposition"))
	}
	// A stored page is never rendered as one.
	p = f.get(c, "/ui/media?p=kazoo/"+acctB+"/page.html")
	h := p.resp.Header
	if h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("stored HTML served as %v", h)
	}
	if p := f.get(c, "/ui/media?p=kazoo/none.mp3"); p.code != http.StatusNotFound {
		t.Errorf("missing media: %d", p.code)
	}
}

func TestPagesAreSafe(t *testing.T) {
	f := newFixture(t, false)
	c := f.signIn("rw")
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	for _, path := range []string{"/ui/", "/ui/play?p=kazoo/" + acctA + "/vm2.mp3", "/ui/delete?p=kazoo/" + acctA + "/vm2.mp3",
		"/ui/move?p=kazoo/" + acctA + "/vm2.mp3", "/ui/nope", "/ui/login"} {
		p := f.get(c, path)
		if csp := p.resp.Header.Get("Content-Security-Policy"); csp != csp {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<b>field") || strings.Contains(p.body, "<i>value") {
			t.Errorf("%s renders stored text as HTML", path)
		}
		for _, tag := range scriptTag.FindAllString(p.body, -1) {
			if tag != `<script src="/ui/static/app.js" defer>` {
				t.Errorf("%s: inline or foreign script %q", path, tag)
			}
		}
		if strings.Contains(p.body, "http://") || strings.Contains(p.body, "https://") {
			t.Errorf("%s refers to another site", path)
		}
	}
	p := f.get(c, "/ui/play?p=kazoo/"+acctA+"/vm2.mp3")
	if !strings.Contains(p.body, "Bob &lt;script&gt;") || !strings.Contains(p.body, "&lt;b&gt;field&lt;/b&gt;") ||
		!strings.Contains(p.body, `<audio id="audio" controls`) {
		t.Errorf("player:\n%s", p.body)
	}
	if got := p.resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "media-src 'self'") || strings.Contains(got, "unsafe-inline") {
		t.Errorf("CSP %q", got)
	}
	for _, asset := range []string{"/ui/static/app.js", "/ui/static/app.css"} {
		if p := f.get(f.client(), asset); p.code != 200 || len(p.body) < 100 {
			t.Errorf("%s: %d", asset, p.code)
		}
	}
	if p := f.get(c, "/ui/nope"); p.code != http.StatusNotFound {
		t.Errorf("unknown page: %d", p.code)
	}
	if p := f.post(c, "/ui/play", nil); p.code != http.StatusMethodNotAllowed {
		t.Errorf("POST to the player: %d", p.code)
	}
}

func TestAnonymousWithoutUsers(t *testing.T) {
	f := newFixture(t, false, func(o *Options) {
		a, _ := auth.New(nil, nil)
		o.Auth = func() *auth.Authenticator { return a }
	})
	c := f.client()
	p := f.get(c, "/ui/")
	if p.code != http.StatusSeeOther {
		t.Fatalf("first visit: %d", p.code)
	}
	p = f.get(c, "/ui/")
	if p.code != 200 || !strings.Contains(p.body, "Alice Smith") || !strings.Contains(p.body, "anonymous") {
		t.Fatalf("anonymous inbox: %d", p.code)
	}
	csrf := field(t, csrfRe, f.get(c, "/ui/delete?p=kazoo/"+acctA+"/vm1.mp3").body)
	if p := f.post(c, "/ui/delete", url.Values{"csrf": {csrf}, "p": {"kazoo/" + acctA + "/vm1.mp3"}}); p.code != http.StatusSeeOther {
		t.Errorf("anonymous delete: %d", p.code)
	}
	if p := f.post(f.client(), "/ui/delete", url.Values{"p": {"kazoo/" + acctA + "/vm2.mp3"}}); p.code != http.StatusUnauthorized {
		t.Errorf("delete without a session: %d", p.code)
	}
}
