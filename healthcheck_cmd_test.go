package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/config"
)

func TestHealthcheck(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ready\n"))
	}))
	defer ready.Close()
	starting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready: starting", http.StatusServiceUnavailable)
	}))
	defer starting.Close()
	overTLS := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer overTLS.Close()
	redirect := httptest.NewServer(http.RedirectHandler(ready.URL, http.StatusFound))
	defer redirect.Close()
	// Accepts and never answers: the timeout must end the wait.
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer hanging.Close()
	defer close(hang)
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	for _, tc := range []struct {
		name string
		args []string
		want string // in the error; "" for success
	}{
		{"ready", []string{"--url", ready.URL + "/readyz"}, ""},
		{"https, certificate checked", []string{"--url", overTLS.URL}, "certificate"},
		{"https, --insecure", []string{"--url", overTLS.URL, "--insecure"}, ""},
		{"not ready", []string{"--url", starting.URL + "/readyz"}, "answered 503 Service Unavailable: not ready: starting"},
		{"redirect is not ready", []string{"--url", redirect.URL}, "answered 302 Found"},
		{"nothing listening", []string{"--url", closed}, "connection refused"},
		{"timeout", []string{"--url", hanging.URL, "--timeout", "200ms"}, "Client.Timeout exceeded"},
		{"not a URL", []string{"--url", "127.0.0.1:37635/readyz"}, `--url "127.0.0.1:37635/readyz": want an http:// or https:// URL`},
		{"zero timeout", []string{"--url", ready.URL, "--timeout", "0s"}, "--timeout 0s: must be positive"},
		{"argument", []string{ready.URL}, "unexpected argument"},
	} {
		out, err := runApp(t, append([]string{"healthcheck"}, tc.args...)...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && !strings.Contains(out, "200 OK"):
			t.Errorf("%s: output %q, want the status", tc.name, out)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.want)
		}
	}
}

func TestHealthcheckDefaultURL(t *testing.T) {
	// The image's HEALTHCHECK passes no --url: the default must be /readyz on
	// the default listen address.
	if want := "http://" + config.Default().Listen + "/readyz"; defaultHealthURL != want {
		t.Errorf("defaultHealthURL = %q, want %q", defaultHealthURL, want)
	}
}
