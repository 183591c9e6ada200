package server

import (
	"io"
	"net/http"
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
