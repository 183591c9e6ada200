package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/config"
)

// TestUIRoute: /ui/ is the voicemail browser, behind allow_from and the
// cross-site check, with its own policy; with [ui] enabled = false the path
// is Kazoo's like any other.
func TestUIRoute(t *testing.T) {
	newServer := func(edit func(*config.Config)) *Server {
		return newTestServer(t, func(c *config.Config) {
			c.Users = []config.User{{Name: "u", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"}}
			if edit != nil {
				edit(c)
			}
		})
	}
	s := newServer(nil)
	resp := do(s, "GET", "/ui/login", "127.0.0.1:1", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="login-form"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "media-src 'self'") {
		t.Fatalf("GET /ui/login: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := do(s, "GET", "/ui", "127.0.0.1:1", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := do(s, "POST", "/ui/login", "127.0.0.1:1", strings.NewReader("user=u&password=pw"),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d", resp.StatusCode)
	}
	s = newServer(func(c *config.Config) { c.AllowFrom = []string{"10.0.0.0/8"} })
	if resp := do(s, "GET", "/ui/login", "192.0.2.1:1", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("from outside allow_from: %d", resp.StatusCode)
	}
	s = newServer(func(c *config.Config) { c.UI.Enabled = false })
	if resp := do(s, "GET", "/ui/login", "127.0.0.1:1", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("[ui] disabled: %d, want Kazoo's 401", resp.StatusCode)
	}
}

// TestUIAccessLogNamesTheUser: the access line of a /ui/ request names the
// session's user, as Basic auth's do on the other routes.
func TestUIAccessLogNamesTheUser(t *testing.T) {
	c := config.Default()
	c.DataDir = t.TempDir()
	c.Users = []config.User{{Name: "alice", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "r"}}
	var logs syncBuffer
	s, err := New(c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Store().Close() })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(srv.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no sign-in token in %s", body)
	}
	resp, err = client.PostForm(srv.URL+"/ui/login", url.Values{"user": {"alice"}, "password": {"pw"}, "token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in and follow to the inbox: %d", resp.StatusCode)
	}
	for _, want := range []string{"method=POST path=/ui/login", "method=GET path=/ui/ "} {
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "msg=request") && strings.Contains(line, want) {
				found = true
				if !strings.Contains(line, "user=alice") {
					t.Errorf("access line without the user: %s", line)
				}
			}
		}
		if !found {
			t.Errorf("no access line with %q in:\n%s", want, logs.String())
		}
	}
}
