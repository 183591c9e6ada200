package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/plugins/hook"
	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/plugins/internal/plugintest"
)

// binary is the real plugin, built once by TestMain.
var binary string

func TestMain(m *testing.M) { plugintest.Main(m, "webhook", &binary) }

// newManager starts the real plugin through the real host.
func newManager(t *testing.T, cfg, secrets map[string]any) (*host.Manager, error) {
	t.Helper()
	return plugintest.Start(t, binary, "webhook", host.Plugin{Config: cfg, Secrets: secrets}, nil)
}

// startHook is newManager for a config that must be accepted.
func startHook(t *testing.T, cfg, secrets map[string]any) hook.Hook {
	t.Helper()
	m, err := newManager(t, cfg, secrets)
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Hook("webhook")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func event(id string) hook.Event {
	return hook.Event{
		Schema:     hook.SchemaVersion,
		EventID:    id,
		Type:       hook.Created,
		OccurredAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Attempt:    2,
		Object: hook.Object{
			Key: "/acct/vm/" + id + ".mp3", Size: 3, ContentType: "audio/mpeg",
			SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		},
	}
}

// receiver is a webhook receiver on loopback that checks what it gets the
// way a real one should, and answers according to the event id.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu     sync.Mutex
	bodies map[string][]byte // event id → body received
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret, bodies: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve)) // listens on 127.0.0.1
	t.Cleanup(r.srv.Close)
	return r
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var problems []string
	check := func(name, got, want string) {
		if got != want {
			problems = append(problems, fmt.Sprintf("%s = %q, want %q", name, got, want))
		}
	}
	var ev hook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		problems = append(problems, "body: "+err.Error())
	}
	check("method", r.Method, http.MethodPost)
	check("Content-Type", r.Header.Get("Content-Type"), "application/json")
	check("User-Agent", r.Header.Get("User-Agent"), "attachd-webhook/test")
	check("X-Attachd-Event-Id", r.Header.Get("X-Attachd-Event-Id"), ev.EventID)
	check("X-Attachd-Event-Type", r.Header.Get("X-Attachd-Event-Type"), ev.Type)
	if rc.secret != "" {
		m := hmac.New(sha256.New, []byte(rc.secret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if got := r.Header.Get("X-Attachd-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
			problems = append(problems, fmt.Sprintf("X-Attachd-Signature = %q, want %q", got, want))
		}
	} else if sig := r.Header.Get("X-Attachd-Signature"); sig != "" {
		problems = append(problems, "signature sent without a secret: "+sig)
	}
	if len(problems) > 0 {
		rc.t.Errorf("receiver: %s", strings.Join(problems, "; "))
		http.Error(w, strings.Join(problems, "; "), http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.bodies[ev.EventID] = body
	rc.mu.Unlock()

	switch ev.EventID {
	case "ok-200":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"annotations": {"transcript": "call me back", "lang": "en"}, "other": 1}`)
	case "ok-201":
		w.WriteHeader(http.StatusCreated)
	case "ok-long-value":
		json.NewEncoder(w).Encode(map[string]any{"annotations": map[string]string{"v": strings.Repeat("é", 3000), "bad key": "x"}})
	case "ok-big":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"annotations": {"a": "%s"}}`, strings.Repeat("x", 70<<10))
	case "retry-429":
		w.Header().Set("Retry-After", "2")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case "retry-503":
		w.Header().Set("Retry-After", "7")
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	case "retry-500":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "fail-404":
		http.Error(w, "no such hook", http.StatusNotFound)
	case "fail-redirect":
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default:
		http.Error(w, "unexpected event", http.StatusTeapot)
	}
}

func TestDeliver(t *testing.T) {
	const secret = "s3cret, from the secrets table"
	rc := newReceiver(t, secret)
	h := startHook(t, map[string]any{"url": rc.srv.URL + "/hook", "timeout": "1s"}, map[string]any{"secret": secret})

	tests := []struct {
		id          string
		outcome     hook.Outcome
		retryAfter  time.Duration
		annotations map[string]string
		message     string // a part of the message
	}{
		{id: "ok-200", outcome: hook.OK, annotations: map[string]string{"transcript": "call me back", "lang": "en"}},
		{id: "ok-201", outcome: hook.OK},
		{id: "ok-long-value", outcome: hook.OK, annotations: map[string]string{"v": strings.Repeat("é", 2048)}, message: "invalid keys"},
		{id: "ok-big", outcome: hook.OK, message: "longer than 65536"},
		{id: "retry-429", outcome: hook.Retry, retryAfter: 2 * time.Second, message: "429"},
		{id: "retry-503", outcome: hook.Retry, retryAfter: 7 * time.Second, message: "503 Service Unavailable: maintenance"},
		{id: "retry-500", outcome: hook.Retry, message: "500"},
		{id: "fail-404", outcome: hook.Fail, message: "404 Not Found: no such hook"},
		{id: "fail-redirect", outcome: hook.Fail, message: "redirects are not followed"},
		{id: "slow", outcome: hook.Retry, message: "timeout 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel() // deliveries come concurrently
			ev := event(tt.id)
			start := time.Now()
			res, err := h.Deliver(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("outcome %v, retry after %v, %d annotations, message %q, after %v",
				res.Outcome, res.RetryAfter, len(res.Annotations), res.Message, time.Since(start).Round(time.Millisecond))
			if res.Outcome != tt.outcome {
				t.Errorf("outcome %v, want %v (message %q)", res.Outcome, tt.outcome, res.Message)
			}
			if res.RetryAfter != tt.retryAfter {
				t.Errorf("retry after %v, want %v", res.RetryAfter, tt.retryAfter)
			}
			if !maps(res.Annotations, tt.annotations) {
				t.Errorf("annotations %q, want %q", res.Annotations, tt.annotations)
			}
			if !strings.Contains(res.Message, tt.message) {
				t.Errorf("message %q does not mention %q", res.Message, tt.message)
			}
			if tt.id == "slow" && time.Since(start) > 5*time.Second {
				t.Errorf("timeout 1s took %v", time.Since(start))
			}
			// The body is the event exactly as the host encoded it.
			want, _ := json.Marshal(ev)
			rc.mu.Lock()
			got := rc.bodies[tt.id]
			rc.mu.Unlock()
			if !bytes.Equal(got, want) {
				t.Errorf("receiver got body\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestNoSecretNoSignature(t *testing.T) {
	rc := newReceiver(t, "")
	h := startHook(t, map[string]any{"url": rc.srv.URL}, nil)
	res, err := h.Deliver(context.Background(), event("ok-201"))
	if err != nil || res.Outcome != hook.OK {
		t.Fatalf("Deliver: %+v, %v", res, err)
	}
}

func TestConnectionRefusedRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h := startHook(t, map[string]any{"url": "http://" + addr + "/hook", "secret": "k"}, nil)
	res, err := h.Deliver(context.Background(), event("refused"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != hook.Retry || !strings.Contains(res.Message, "refused") {
		t.Errorf("Deliver to a closed port: %+v", res)
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		cfg     map[string]any
		secrets map[string]any
		want    string
	}{
		{map[string]any{}, nil, `key "url": must be set`},
		{map[string]any{"url": "ftp://example.com/x"}, nil, `key "url": want an http:// or https:// URL`},
		{map[string]any{"url": "http:///path"}, nil, `key "url": has no host`},
		{map[string]any{"url": "http://127.0.0.1/", "timeout": "soon"}, nil, `key "timeout"`},
		{map[string]any{"url": "http://127.0.0.1/", "timeout": "-1s"}, nil, `key "timeout"`},
		{map[string]any{"url": "http://127.0.0.1/", "timeout": 10}, nil, `timeout`},
		{map[string]any{"url": "http://127.0.0.1/", "uri": "x"}, nil, `unknown key "uri"`},
		{map[string]any{"url": "http://127.0.0.1/"}, map[string]any{"secret": 42}, `secret`},
	}
	for _, tt := range tests {
		_, err := newManager(t, tt.cfg, tt.secrets)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %v, secrets %v: error %v, want one containing %q", tt.cfg, tt.secrets, err, tt.want)
		}
	}
}

func TestSign(t *testing.T) {
	// The HMAC-SHA256 test vector from RFC 2104's usual example.
	got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	if want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		" 5 ":                           5 * time.Second,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"99999999999":                   maxRetryAfter,
		"Sat, 01 Mar 2025 12:01:30 GMT": 90 * time.Second,
		"Sat, 01 Mar 2025 11:00:00 GMT": 0,
	}
	for h, want := range tests {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestBound(t *testing.T) {
	in := map[string]string{}
	for i := range 70 {
		in[fmt.Sprintf("k%02d", i)] = "v"
	}
	out, msg := bound(in)
	if len(out) != maxAnnotations || out["k00"] != "v" || out["k63"] != "v" || out["k64"] != "" {
		t.Errorf("bound kept %d annotations: %v", len(out), out)
	}
	if !strings.Contains(msg, "6 annotations beyond the first 64 dropped") {
		t.Errorf("message %q", msg)
	}
}
