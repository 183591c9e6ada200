package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pluginDir builds the real plugin binaries once and returns their folder
// and their SHA-256 pins.
var pluginBuild struct {
	once sync.Once
	dir  string
	pins map[string]string
	err  error
}

func plugins(t testing.TB) (string, map[string]string) {
	t.Helper()
	pluginBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "attachd-e2e-plugins-")
		if err != nil {
			pluginBuild.err = err
			return
		}
		out, err := exec.Command(filepath.Join(repoRoot(), "plugins", "build.sh"), dir).CombinedOutput()
		if err != nil {
			pluginBuild.err = fmt.Errorf("plugins/build.sh: %v\n%s", err, out)
			return
		}
		pluginBuild.dir, pluginBuild.pins = dir, map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 {
				pluginBuild.pins[strings.TrimPrefix(filepath.Base(f[1]), "attachd-plugin-")] = f[0]
			}
		}
	})
	if pluginBuild.err != nil {
		t.Fatal(pluginBuild.err)
	}
	return pluginBuild.dir, pluginBuild.pins
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// receiver is a webhook endpoint on loopback that fails a share of requests.
type receiver struct {
	srv         *httptest.Server
	secret      string
	failRate    float64
	status      atomic.Int32 // when not 0, answer this instead
	block       chan struct{}
	blockedOnce atomic.Bool

	mu        sync.Mutex
	delivered map[string]map[string]bool // key → types delivered with 2xx
	events    map[string]int             // event id → deliveries answered 2xx
	requests  int
}

func newReceiver(t testing.TB, failRate float64) *receiver {
	r := &receiver{secret: "s3cret", failRate: failRate, delivered: map[string]map[string]bool{}, events: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	if t != nil {
		t.Cleanup(r.srv.Close)
	}
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(body)
	if req.Header.Get("X-Attachd-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if b := r.block; b != nil {
		<-b
		if r.blockedOnce.CompareAndSwap(false, true) {
			// The request in flight when its plugin was killed: answer it
			// with a failure, so that only the retry can deliver.
			http.Error(w, "too late", http.StatusServiceUnavailable)
			return
		}
	}
	r.mu.Lock()
	r.requests++
	r.mu.Unlock()
	if s := r.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	if rand.Float64() < r.failRate {
		http.Error(w, "random failure", http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
		Object  struct {
			Key    string `json:"key"`
			SHA256 string `json:"sha256"`
		} `json:"object"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	if r.delivered[ev.Object.Key] == nil {
		r.delivered[ev.Object.Key] = map[string]bool{}
	}
	r.delivered[ev.Object.Key][ev.Type] = true
	r.events[ev.EventID]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// missing returns how many of keys have no delivered event of type typ.
func (r *receiver) missing(keys []string, typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range keys {
		if !r.delivered[k][typ] {
			n++
		}
	}
	return n
}

func (r *receiver) waitAll(t *testing.T, keys []string, typ string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		n := r.missing(keys, typ)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d %s events never delivered within %s", n, len(keys), typ, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func webhookConfig(t testing.TB, r *receiver, hookTable string) *config {
	dir, pins := plugins(t)
	return &config{Extra: fmt.Sprintf(`hooks = ["webhook"]
[plugins]
dir = %q
[plugin.webhook]
sha256 = %q
[plugin.webhook.config]
url = %q
secret = %q
timeout = "2s"
[hook.webhook]
%s
`, dir, pins["webhook"], r.srv.URL, r.secret, hookTable)}
}

func put(t *testing.T, s *server, path string, body []byte) (int, error) {
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.Addr+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "audio/mpeg")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestHooksEveryEventDelivered: 2 000 uploads, a webhook receiver failing 30 %
// of the time, attachd killed with SIGKILL halfway and restarted: every
// accepted upload's event reaches the receiver at least once.
func TestHooksEveryEventDelivered(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	r := newReceiver(t, 0.3)
	srv := startServer(t, serverOptions{Config: webhookConfig(t, r, `concurrency = 8
timeout = "3s"
min_backoff = "50ms"
max_backoff = "1s"`)})
	var accepted []string
	var mu sync.Mutex
	upload := func(from, to int) {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		next.Store(int64(from))
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= to {
						return
					}
					path := fmt.Sprintf("/hooks/acct/%04d/vm-%04d.mp3", i/100, i)
					code, err := put(t, srv, path, []byte(path))
					if err == nil && code == http.StatusCreated {
						mu.Lock()
						accepted = append(accepted, strings.TrimPrefix(path, "/"))
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
	}
	upload(0, n/2)
	srv.kill(t) // kill -9 with deliveries queued and in flight
	srv.restart(t)
	upload(n/2, n)
	if len(accepted) != n {
		t.Fatalf("%d of %d uploads accepted", len(accepted), n)
	}
	r.waitAll(t, accepted, "attachment.created", 3*time.Minute)
	r.mu.Lock()
	t.Logf("%d events delivered to %d requests (30%% failed on purpose)", len(r.events), r.requests)
	r.mu.Unlock()
}

// TestHookDeadLetterAndRetry: a hook that keeps failing gives up after
// max_attempts; `attachd hooks retry` delivers the dead letter.
func TestHookDeadLetterAndRetry(t *testing.T) {
	r := newReceiver(t, 0)
	r.status.Store(http.StatusServiceUnavailable)
	srv := startServer(t, serverOptions{Config: webhookConfig(t, r, `max_attempts = 3
min_backoff = "20ms"`)})
	if code, err := put(t, srv, "/dead/letter.mp3", []byte("x")); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	waitFor(t, 20*time.Second, "a dead letter", func() bool {
		out, _ := exec.Command(attachdBinary(t), "hooks", "status", "--data-dir", srv.DataDir).CombinedOutput()
		f := strings.Fields(lastLine(string(out)))
		return len(f) >= 4 && f[0] == "webhook" && f[len(f)-1] == "1"
	})
	r.mu.Lock()
	if r.requests != 3 {
		t.Errorf("%d attempts before the dead letter, want 3", r.requests)
	}
	r.mu.Unlock()
	r.status.Store(0)
	out, err := exec.Command(attachdBinary(t), "hooks", "retry", "--hook", "webhook", "--data-dir", srv.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "queued 1 dead letters again") {
		t.Fatalf("hooks retry: %v\n%s", err, out)
	}
	r.waitAll(t, []string{"dead/letter.mp3"}, "attachment.created", 20*time.Second)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHookPluginKilledMidDelivery: the hook plugin dies while delivering;
// the supervisor restarts it and the delivery is made again.
func TestHookPluginKilledMidDelivery(t *testing.T) {
	r := newReceiver(t, 0)
	r.block = make(chan struct{})
	srv := startServer(t, serverOptions{Config: webhookConfig(t, r, `min_backoff = "50ms"`)})
	if code, err := put(t, srv, "/killed/mid.mp3", []byte("x")); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	var pid int
	waitFor(t, 10*time.Second, "webhook plugin process", func() bool {
		pid = childNamed(srv.proc.cmd.Process.Pid, "attachd-plugin-webhook")
		return pid != 0
	})
	time.Sleep(300 * time.Millisecond) // the delivery is blocked in the receiver
	syscall.Kill(pid, syscall.SIGKILL)
	close(r.block)
	r.waitAll(t, []string{"killed/mid.mp3"}, "attachment.created", 30*time.Second)
	waitFor(t, 10*time.Second, "restarted plugin", func() bool {
		p := childNamed(srv.proc.cmd.Process.Pid, "attachd-plugin-webhook")
		return p != 0 && p != pid
	})
}

// childNamed returns the pid of a child of parent whose command is name, or 0.
func childNamed(parent int, name string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		if exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); filepath.Base(exe) == name {
			return pid
		}
	}
	return 0
}

// TestHooksFireForWebDAV: stores and deletes through WebDAV queue the same
// events as Kazoo's.
func TestHooksFireForWebDAV(t *testing.T) {
	r := newReceiver(t, 0)
	srv := startServer(t, serverOptions{Config: webhookConfig(t, r, "")})
	base := "http://" + srv.Addr + "/dav/"
	do := func(method, path string, body []byte) int {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do("MKCOL", "dav-hooks/", nil); c != http.StatusCreated {
		t.Fatalf("MKCOL: %d", c)
	}
	if c := do("PUT", "dav-hooks/a.wav", []byte("abc")); c != http.StatusCreated {
		t.Fatalf("PUT: %d", c)
	}
	r.waitAll(t, []string{"dav-hooks/a.wav"}, "attachment.created", 20*time.Second)
	if c := do("DELETE", "dav-hooks/a.wav", nil); c != http.StatusNoContent {
		t.Fatalf("DELETE: %d", c)
	}
	r.waitAll(t, []string{"dav-hooks/a.wav"}, "attachment.deleted", 20*time.Second)
}

// TestExecHookChecksContent: the exec hook runs a shell script that reads the
// object's bytes and checks their SHA-256 against the event.
func TestExecHookChecksContent(t *testing.T) {
	dir, pins := plugins(t)
	work := t.TempDir()
	marker := filepath.Join(work, "ok")
	script := filepath.Join(work, "check.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
set -e
got=$(sha256sum "$ATTACHD_CONTENT_PATH" | cut -d' ' -f1)
[ "$got" = "$ATTACHD_SHA256" ] || { echo "sha256 $got != $ATTACHD_SHA256" >&2; exit 1; }
echo "$ATTACHD_KEY $got" >> `+marker+`
echo "checked=yes"
`), 0o755)
	srv := startServer(t, serverOptions{Config: &config{Extra: fmt.Sprintf(`hooks = ["exec"]
[plugins]
dir = %q
[plugin.exec]
sha256 = %q
[plugin.exec.config]
command = ["/bin/sh", %q]
`, dir, pins["exec"], script)}})
	body := bytes.Repeat([]byte("voicemail "), 100000)
	if code, err := put(t, srv, "/exec/vm.mp3", body); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	sum := sha256.Sum256(body)
	waitFor(t, 20*time.Second, "exec hook run", func() bool {
		b, _ := os.ReadFile(marker)
		return strings.Contains(string(b), "exec/vm.mp3 "+hex.EncodeToString(sum[:]))
	})
}
