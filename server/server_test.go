package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/attachd/attachd/server/config"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRefusesOpenListenerWithoutAuth(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "0.0.0.0:37635"
	_, err := New(cfg, quiet())
	if err == nil || !strings.Contains(err.Error(), "allow_anonymous") {
		t.Fatalf("New on 0.0.0.0 without users: %v", err)
	}
	cfg.AllowAnonymous = true
	s, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s.Store().Close()
}

// TestReadyzAndDrain checks /readyz flips when the server drains, and that
// Serve returns with the store closed cleanly.
func TestReadyzAndDrain(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Log.Access = false
	s, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err = http.Get(url + "/no/such/object"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown object: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(url + "/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %v %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `attachd_http_requests_total{code="404",method="GET",route="kazoo"} 1`) {
		t.Errorf("metrics lack the request:\n%s", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if s.ready.Load() {
		t.Error("still ready after draining")
	}
}

// start runs a server configured by cfg (after edit) on a loopback port
// until the test ends, and returns it with its base URL.
func start(t *testing.T, edit func(*config.Config)) (*Server, string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Log.Access = false
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, "http://" + ln.Addr().String()
}

func bcryptHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// do serves one request in memory from remote (host:port) and returns the response.
func do(s *Server, method, target, remote string, body io.Reader, header ...string) *http.Response {
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w.Result()
}

// series counts the series of the metric families whose names start with prefix.
func series(t *testing.T, s *Server, prefix string) int {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), prefix) {
			n += len(mf.GetMetric())
		}
	}
	return n
}

// TestMetricLabelsAreBounded: methods are taken as sent by any client, even
// unauthenticated, so each label value must come from a closed set.
func TestMetricLabelsAreBounded(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Log.Access = false
	cfg.Users = []config.User{{Name: "kazoo", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"}}
	s, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Store().Close()
	method := func() string {
		b := make([]byte, 40)
		for i := range b {
			b[i] = 'A' + byte(rand.IntN(26))
		}
		return string(b)
	}
	for range 20 {
		do(s, method(), "/kazoo/x", "127.0.0.1:1", nil).Body.Close()
		do(s, method(), "/dav/x", "127.0.0.1:1", nil).Body.Close()
	}
	before := series(t, s, "attachd_http_")
	for range 500 {
		do(s, method(), "/kazoo/x", "127.0.0.1:1", nil).Body.Close()
		do(s, method(), "/dav/x", "127.0.0.1:1", nil).Body.Close()
	}
	if after := series(t, s, "attachd_http_"); after != before {
		t.Errorf("1000 requests with random methods grew the HTTP metrics from %d to %d series", before, after)
	}
}

// rawRequest opens a connection to base and writes head.
func rawRequest(t *testing.T, base, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

func readResponse(t *testing.T, c net.Conn, within time.Duration) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", within, err)
	}
	return resp
}

// TestSlowBodiesAreCut: a body that idles, or trickles under min_body_rate,
// is cut with a 408, and its upload leaves nothing behind.
func TestSlowBodiesAreCut(t *testing.T) {
	s, base := start(t, func(c *config.Config) {
		c.Limits.BodyIdleTimeout = config.Duration(300 * time.Millisecond)
		c.Limits.MinBodyRate = 1 << 10
	})
	for _, route := range []string{"/kazoo/a/slow.mp3", "/dav/slow.mp3"} {
		t.Run("idle"+route, func(t *testing.T) {
			c := rawRequest(t, base, "PUT "+route+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")
			resp := readResponse(t, c, 5*time.Second)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
		})
		t.Run("trickle"+route, func(t *testing.T) {
			c := rawRequest(t, base, "PUT "+route+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			resp := readResponse(t, c, 5*time.Second)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
		})
	}
	waitFor(t, "tmp/ to empty", func() bool {
		entries, _ := os.ReadDir(filepath.Join(s.cfg.DataDir, "tmp"))
		return len(entries) == 0
	})
	for _, target := range []string{base + "/kazoo/a/slow.mp3", base + "/dav/slow.mp3"} {
		resp, err := http.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s after a cut upload: %d, want 404", target, resp.StatusCode)
		}
	}
	// A body that keeps up is stored.
	req, _ := http.NewRequest("PUT", base+"/kazoo/a/fast.mp3", strings.NewReader(strings.Repeat("x", 1<<16)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("normal PUT: %d", resp.StatusCode)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUploadCap: past max_uploads at once, uploads get 503 with Retry-After.
func TestUploadCap(t *testing.T) {
	_, base := start(t, func(c *config.Config) { c.Limits.MaxUploads = 1 })
	first := rawRequest(t, base, "PUT /kazoo/a/1.mp3 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nx")
	time.Sleep(100 * time.Millisecond) // let the first upload start
	second := rawRequest(t, base, "PUT /kazoo/a/2.mp3 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nxx")
	resp := readResponse(t, second, 5*time.Second)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second upload: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	io.WriteString(first, "x")
	if resp := readResponse(t, first, 5*time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first upload: %d", resp.StatusCode)
	}
	// Once it is done, the next one goes through; reads are never capped.
	third := rawRequest(t, base, "PUT /kazoo/a/3.mp3 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	if resp := readResponse(t, third, 5*time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload after the first ended: %d", resp.StatusCode)
	}
}

// TestConnectionCap: past max_connections, a new connection waits.
func TestConnectionCap(t *testing.T) {
	_, base := start(t, func(c *config.Config) { c.Limits.MaxConnections = 1 })
	first := rawRequest(t, base, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, first, 5*time.Second)
	second := rawRequest(t, base, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("a second connection was served while the first was open")
	}
	first.Close()
	readResponse(t, second, 5*time.Second)
}

// TestStoredObjectsCannotScript: an uploaded HTML file must not run on
// attachd's origin, whichever route serves it.
func TestStoredObjectsCannotScript(t *testing.T) {
	s, base := start(t, nil)
	page := "<script>alert(document.domain)</script>"
	for _, target := range []string{"/kazoo/a/x.html", "/dav/x.svg"} {
		req, _ := http.NewRequest("PUT", base+target, strings.NewReader(page))
		req.Header.Set("Content-Type", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, method := range []string{"GET", "HEAD"} {
			resp := do(s, method, target, "127.0.0.1:1", nil)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %d", method, target, resp.StatusCode)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s: X-Content-Type-Options %q", method, target, got)
			}
			if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "sandbox") || !strings.Contains(got, "default-src 'none'") {
				t.Errorf("%s %s: Content-Security-Policy %q, want a sandbox", method, target, got)
			}
		}
	}
	for _, target := range []string{"/healthz", "/metrics", "/kazoo/missing", "/dav/"} {
		resp := do(s, "GET", target, "127.0.0.1:1", nil)
		resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", target, got)
		}
	}
}

// TestCrossSiteWritesAreRefused: a browser on another site can POST a form
// (text/plain or multipart) without a preflight; attachd must refuse it.
func TestCrossSiteWritesAreRefused(t *testing.T) {
	s, err := New(func() config.Config {
		c := config.Default()
		c.DataDir = t.TempDir()
		c.Log.Access = false
		c.PublicURL = "https://files.example.com/"
		return c
	}(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Store().Close()
	tests := []struct {
		method, target string
		header         []string
		want           int
	}{
		{"POST", "/kazoo/a/1.txt", []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, 403},
		{"PUT", "/dav/1.txt", []string{"Origin", "null"}, 403},
		{"DELETE", "/dav/1.txt", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"POST", "/kazoo/a/1.txt", []string{"Sec-Fetch-Site", "same-site", "Content-Type", "multipart/form-data; boundary=b"}, 403},
		{"MKCOL", "/dav/d", []string{"Origin", "https://evil.example"}, 403},
		{"POST", "/kazoo/a/1.txt", nil, 201}, // Kazoo: no browser headers
		{"POST", "/kazoo/a/2.txt", []string{"Origin", "http://example.com"}, 201},
		{"POST", "/kazoo/a/3.txt", []string{"Origin", "https://files.example.com"}, 201},
		{"PUT", "/dav/4.txt", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com"}, 201},
		{"GET", "/kazoo/a/1.txt", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 200},
		{"PROPFIND", "/dav/", []string{"Sec-Fetch-Site", "cross-site", "Depth", "0"}, 207},
	}
	for _, tt := range tests {
		var body io.Reader = strings.NewReader("hello")
		if safeMethod(tt.method) {
			body = nil
		}
		resp := do(s, tt.method, tt.target, "127.0.0.1:1", body, tt.header...)
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s %q: %d %q, want %d", tt.method, tt.target, tt.header, resp.StatusCode, msg, tt.want)
		}
		if tt.want == 403 && !strings.Contains(string(msg), "cross-origin") {
			t.Errorf("%s %s: 403 body %q does not say why", tt.method, tt.target, msg)
		}
	}
}

// TestOperationalEndpointsAreRestricted: allow_from covers /healthz,
// /readyz and /metrics (loopback keeps the probes), and /metrics has its own
// allow-list and login.
func TestOperationalEndpointsAreRestricted(t *testing.T) {
	newServer := func(edit func(*config.Config)) *Server {
		return newTestServer(t, func(c *config.Config) {
			c.Users = []config.User{
				{Name: "kazoo", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"},
				{Name: "prom", PasswordHash: bcryptHash(t, "scrape"), Root: "/", Permissions: "r"},
			}
			edit(c)
		})
	}
	check := func(s *Server, target, remote string, want int, header ...string) {
		t.Helper()
		resp := do(s, "GET", target, remote, nil, header...)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s from %s %q: %d, want %d", target, remote, header, resp.StatusCode, want)
		}
	}
	basic := func(user, pass string) []string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return []string{"Authorization", r.Header.Get("Authorization")}
	}

	s := newServer(func(c *config.Config) { c.AllowFrom = []string{"10.0.0.0/24"} })
	check(s, "/healthz", "192.0.2.1:1", 403)
	check(s, "/readyz", "192.0.2.1:1", 403)
	check(s, "/metrics", "192.0.2.1:1", 403)
	check(s, "/healthz", "10.0.0.7:1", 200)
	check(s, "/healthz", "127.0.0.1:1", 200) // local probes
	check(s, "/metrics", "10.0.0.7:1", 403)  // [metrics] allow_from empty: loopback only
	check(s, "/metrics", "127.0.0.1:1", 403) // but allow_from holds as well
	check(s, "/metrics", "[::1]:1", 403)

	s = newServer(func(c *config.Config) {})
	check(s, "/metrics", "127.0.0.1:1", 200)
	check(s, "/metrics", "10.0.0.7:1", 403)

	s = newServer(func(c *config.Config) {
		c.Metrics.AllowFrom = []string{"10.0.0.0/24"}
		c.Metrics.User = "prom"
	})
	check(s, "/metrics", "192.0.2.1:1", 403, basic("prom", "scrape")...)
	check(s, "/metrics", "10.0.0.7:1", 401)
	check(s, "/metrics", "10.0.0.7:1", 401, basic("prom", "wrong")...)
	check(s, "/metrics", "10.0.0.7:1", 401, basic("kazoo", "pw")...)
	check(s, "/metrics", "10.0.0.7:1", 200, basic("prom", "scrape")...)
}

// TestOptionsOnTheRoot: Windows' WebClient sends OPTIONS / first, without
// credentials, and gives up unless it looks like a WebDAV server.
func TestOptionsOnTheRoot(t *testing.T) {
	c := config.Default()
	c.DataDir = t.TempDir()
	c.Log.Access = false
	c.Users = []config.User{{Name: "kazoo", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"}}
	s, err := New(c, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Store().Close()
	resp := do(s, "OPTIONS", "/", "127.0.0.1:1", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("DAV"), "2") ||
		!strings.Contains(resp.Header.Get("Allow"), "PROPFIND") || resp.Header.Get("MS-Author-Via") != "DAV" {
		t.Errorf("OPTIONS /: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestFailedLoginsAreAnswered429: past limits.auth_failures, 429 with Retry-After.
func TestFailedLoginsAreAnswered429(t *testing.T) {
	c := config.Default()
	c.DataDir = t.TempDir()
	c.Log.Access = false
	c.Limits.AuthFailures = 2
	c.Users = []config.User{{Name: "kazoo", PasswordHash: bcryptHash(t, "pw"), Root: "/", Permissions: "rw"}}
	s, err := New(c, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Store().Close()
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("kazoo", "wrong")
	bad := r.Header.Get("Authorization")
	for i, want := range []int{401, 401, 429} {
		resp := do(s, "GET", "/kazoo/x", "10.0.0.1:1", nil, "Authorization", bad)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("failure %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
}
