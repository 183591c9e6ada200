package server

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/config"
)

func newTestServer(t *testing.T, edit func(*config.Config)) *Server {
	t.Helper()
	c := config.Default()
	c.DataDir = t.TempDir()
	c.Log.Access = false
	edit(&c)
	s, err := New(c, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Store().Close() })
	return s
}

// TestAllowFromSeesTheForwardedClient: behind a trusted proxy, allow_from
// judges the address the proxy forwards; from anyone else the header is
// ignored, so a client cannot claim an allowed address.
func TestAllowFromSeesTheForwardedClient(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) {
		c.AllowFrom = []string{"198.51.100.0/24"}
		c.TrustedProxies = []string{"10.0.0.2", "10.0.1.0/24"}
	})
	tests := []struct {
		remote string
		header []string
		want   int
	}{
		{"10.0.0.2:5000", []string{"X-Forwarded-For", "198.51.100.7"}, 404},
		{"10.0.0.2:5000", []string{"X-Forwarded-For", "203.0.113.9"}, 403},
		{"10.0.0.2:5000", []string{"X-Forwarded-For", "198.51.100.7, 203.0.113.9"}, 403}, // spoofed left part
		{"10.0.0.2:5000", []string{"X-Forwarded-For", "203.0.113.9, 198.51.100.7, 10.0.1.5"}, 404},
		{"10.0.0.2:5000", []string{"Forwarded", `for=198.51.100.7;proto=https`}, 404},
		{"10.0.0.2:5000", []string{"Forwarded", `for="[2001:db8::1]"`}, 403},
		{"10.0.0.2:5000", nil, 403}, // the proxy itself is not allowed
		{"10.0.0.2:5000", []string{"X-Forwarded-For", "not-an-address"}, 403}, // malformed: the proxy
		// One header kind the proxy wrote, the other the client: refused,
		// whichever of the two names an allowed address.
		{"10.0.0.2:5000", []string{"Forwarded", "for=198.51.100.7", "X-Forwarded-For", "203.0.113.9"}, 400},
		{"10.0.0.2:5000", []string{"Forwarded", "for=203.0.113.9", "X-Forwarded-For", "198.51.100.7"}, 400},
		{"203.0.113.9:5000", []string{"X-Forwarded-For", "198.51.100.7"}, 403},
		{"203.0.113.9:5000", []string{"Forwarded", "for=198.51.100.7"}, 403},
		{"198.51.100.7:5000", []string{"X-Forwarded-For", "203.0.113.9"}, 404}, // not a proxy: its header is ignored
	}
	for _, tt := range tests {
		for _, target := range []string{"/kazoo/none", "/healthz"} {
			want := tt.want
			if target == "/healthz" && want == 404 {
				want = 200
			}
			resp := do(s, "GET", target, tt.remote, nil, tt.header...)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s from %s %q: %d, want %d", target, tt.remote, tt.header, resp.StatusCode, want)
			}
		}
	}
	// A reload replaces the list: the proxy's header is no longer believed.
	if err := s.SetTrustedProxies(nil); err != nil {
		t.Fatal(err)
	}
	resp := do(s, "GET", "/kazoo/none", "10.0.0.2:5000", nil, "X-Forwarded-For", "198.51.100.7")
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("after trusted_proxies emptied: %d, want 403", resp.StatusCode)
	}
	if err := s.SetTrustedProxies([]string{"nope"}); err == nil {
		t.Error("SetTrustedProxies took a bad entry")
	}
}

// TestLoginRateLimitPerForwardedClient: the per-address bucket of failed
// logins is the forwarded client's, so that one client behind the proxy
// cannot lock the others out, and a client cannot escape its bucket by
// writing the header itself.
func TestLoginRateLimitPerForwardedClient(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) {
		c.TrustedProxies = []string{"10.0.0.2"}
		c.Limits.AuthFailures = 2
		c.Users = []config.User{
			{Name: "a", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"},
			{Name: "b", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"},
			{Name: "c", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"},
			{Name: "d", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"},
		}
	})
	basic := func(user string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, "wrong")
		return r.Header.Get("Authorization")
	}
	try := func(remote, user string, want int, header ...string) {
		t.Helper()
		resp := do(s, "GET", "/kazoo/x", remote, nil, append([]string{"Authorization", basic(user)}, header...)...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s as %s %q: %d, want %d", remote, user, header, resp.StatusCode, want)
		}
	}
	// Client 198.51.100.7 behind the proxy uses up its address's bucket
	// (two users, so that the per-name buckets stay open).
	try("10.0.0.2:1", "a", 401, "X-Forwarded-For", "198.51.100.7")
	try("10.0.0.2:1", "b", 401, "X-Forwarded-For", "198.51.100.7")
	try("10.0.0.2:1", "c", 429, "X-Forwarded-For", "198.51.100.7")
	// Another client behind the same proxy is not locked out.
	try("10.0.0.2:1", "c", 401, "X-Forwarded-For", "198.51.100.8")
	// The locked-out client cannot escape by prepending another address.
	try("10.0.0.2:1", "d", 429, "X-Forwarded-For", "198.51.100.99, 198.51.100.7")
	// Directly, a client's header is ignored: its own address counts.
	try("203.0.113.9:1", "d", 401, "X-Forwarded-For", "198.51.100.50")
	try("203.0.113.9:1", "d", 401, "X-Forwarded-For", "198.51.100.51")
	try("203.0.113.9:1", "c", 429, "X-Forwarded-For", "198.51.100.52")
}

// TestCrossSiteUsesTheForwardedScheme: an origin is a scheme and a host;
// behind a TLS-terminating proxy, the client's scheme is the proxy's word.
func TestCrossSiteUsesTheForwardedScheme(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.2"} })
	tests := []struct {
		remote string
		header []string
		want   int
	}{
		{"10.0.0.2:1", []string{"Origin", "https://example.com", "X-Forwarded-Proto", "https", "X-Forwarded-For", "192.0.2.1"}, 201},
		{"10.0.0.2:1", []string{"Origin", "https://example.com", "Forwarded", "for=192.0.2.1;proto=https"}, 201},
		{"10.0.0.2:1", []string{"Origin", "http://example.com", "X-Forwarded-Proto", "https", "X-Forwarded-For", "192.0.2.1"}, 403},
		{"10.0.0.2:1", []string{"Origin", "https://example.com"}, 403},
		{"192.0.2.1:1", []string{"Origin", "https://example.com", "X-Forwarded-Proto", "https"}, 403},
		{"192.0.2.1:1", []string{"Origin", "http://example.com", "X-Forwarded-Proto", "https"}, 201},
	}
	for i, tt := range tests {
		resp := do(s, "PUT", "/dav/"+string(rune('a'+i)), tt.remote, nil, tt.header...)
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("PUT from %s %q: %d %q, want %d", tt.remote, tt.header, resp.StatusCode, msg, tt.want)
		}
	}
}

// TestMetricNamesCarryUnits: a duration or an age is in seconds and says so,
// bytes say bytes, and no metric labels a hook other than "hook".
func TestMetricNamesCarryUnits(t *testing.T) {
	s := newTestServer(t, func(c *config.Config) {})
	resp := do(s, "PUT", "/kazoo/a/1.txt", "127.0.0.1:1", strings.NewReader("hello"))
	resp.Body.Close()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		names[name] = true
		if !strings.HasPrefix(name, "attachd_") {
			continue
		}
		base := strings.TrimSuffix(name, "_total")
		for _, word := range []string{"duration", "age", "latency", "pending", "time"} {
			if strings.Contains(base, word) && !strings.HasSuffix(base, "_seconds") {
				t.Errorf("%s measures time but does not end in _seconds", name)
			}
		}
		if strings.Contains(base, "bytes") && !strings.HasSuffix(base, "_bytes") {
			t.Errorf("%s counts bytes but does not end in _bytes", name)
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" {
					t.Errorf("%s has a sink label", name)
				}
			}
		}
	}
	for _, want := range []string{"attachd_build_info", "attachd_objects", "attachd_stored_bytes",
		"attachd_http_request_duration_seconds", "attachd_http_requests_total"} {
		if !names[want] {
			t.Errorf("no %s", want)
		}
	}
}
