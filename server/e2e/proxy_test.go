package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestTrustedProxy: through the built binary, a request from a trusted
// proxy is judged and logged as its forwarded client, and a request that
// is not from one cannot claim an address.
func TestTrustedProxy(t *testing.T) {
	if clusterNodes(t) > 0 {
		t.Skip("one node's log is read")
	}
	// The test client is the proxy (127.0.0.1); Kazoo is 198.51.100.0/24.
	srv := startServer(t, serverOptions{Config: &config{Extra: `trusted_proxies = ["127.0.0.1"]
allow_from = ["198.51.100.0/24"]
`}})
	get := func(path string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/proxy/allowed", "X-Forwarded-For", "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto", "https"); code != http.StatusNotFound {
		t.Errorf("forwarded from an allowed client: %d, want 404", code)
	}
	if code := get("/proxy/refused", "X-Forwarded-For", "198.51.100.7, 203.0.113.9"); code != http.StatusForbidden {
		t.Errorf("forwarded from a client outside allow_from: %d, want 403", code)
	}
	if code := get("/proxy/self"); code != http.StatusForbidden {
		t.Errorf("the proxy itself, outside allow_from: %d, want 403", code)
	}
	srv.waitLog(t, "path=/proxy/allowed", 1)
	for _, line := range strings.Split(srv.proc.out.String(), "\n") {
		if strings.Contains(line, "path=/proxy/allowed") &&
			!(strings.Contains(line, "remote=198.51.100.7") && strings.Contains(line, "peer=127.0.0.1") &&
				strings.Contains(line, "scheme=https") && strings.Contains(line, "duration_ms=")) {
			t.Errorf("access line without the forwarded client: %s", line)
		}
	}
}
