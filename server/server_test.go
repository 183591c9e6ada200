package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
