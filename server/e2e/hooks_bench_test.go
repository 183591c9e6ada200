package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These benchmarks drive the built binary and the real plugins; run them with
//
//	go test -run '^$' -bench Hook -benchtime 1x ./server/e2e/
//
// They report rates, not timings to assert: compare them within one run.

// BenchmarkHookDelivery measures events delivered per second to a webhook
// whose receiver does nothing but answer 204: the events are queued first
// (as dead letters of a receiver answering 503), then all requeued at once.
func BenchmarkHookDelivery(b *testing.B) {
	const n = 5000
	r := newReceiver(b, 0)
	r.status.Store(http.StatusServiceUnavailable)
	srv := startServer(b, serverOptions{Config: webhookConfig(b, r, "concurrency = 16\nmax_attempts = 1")})
	keys := make([]string, n)
	putMany(b, srv, n, 8, 1024, func(i int, path string) { keys[i] = path[1:] })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, _ := exec.Command(attachdBinary(b), "hooks", "status", "--data-dir", srv.DataDir).CombinedOutput()
		if f := strings.Fields(lastLine(string(out))); len(f) >= 4 && f[len(f)-1] == fmt.Sprint(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("events not queued within 5 min")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.status.Store(0)
	start := time.Now()
	if out, err := exec.Command(attachdBinary(b), "hooks", "retry", "--data-dir", srv.DataDir).CombinedOutput(); err != nil {
		b.Fatalf("hooks retry: %v\n%s", err, out)
	}
	for r.missing(keys, "attachment.created") > 0 {
		if time.Now().After(deadline) {
			b.Fatal("events not delivered within 5 min")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkPutWithHooks measures 100 KiB Kazoo PUTs per second (8 clients,
// 5 s) with no hooks, then with two webhooks configured (the webhook plugin
// twice, under two names), then with a webhook and an exec hook running
// /bin/true for each event.
func BenchmarkPutWithHooks(b *testing.B) {
	r := newReceiver(b, 0)
	dir, pins := plugins(b)
	// A second webhook: the same binary under another name.
	src, err := os.ReadFile(filepath.Join(dir, "attachd-plugin-webhook"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "attachd-plugin-archive"), src, 0o755); err != nil {
		b.Fatal(err)
	}
	hook := func(name string) string {
		return fmt.Sprintf("[plugin.%s]\nsha256 = %q\n[plugin.%s.config]\nurl = %q\nsecret = %q\n", name, pins["webhook"], name, r.srv.URL, r.secret)
	}
	none := startServer(b, serverOptions{})
	base := rate(b, none, 5*time.Second)
	none.stop(b)
	two := startServer(b, serverOptions{Config: &config{Extra: fmt.Sprintf("hooks = [\"webhook\", \"archive\"]\n[plugins]\ndir = %q\n", dir) + hook("webhook") + hook("archive")}})
	webhooks := rate(b, two, 5*time.Second)
	two.stop(b)
	withExec := startServer(b, serverOptions{Config: &config{Extra: fmt.Sprintf(`hooks = ["webhook", "exec"]
[plugins]
dir = %q
[plugin.exec]
sha256 = %q
[plugin.exec.config]
command = ["/bin/true"]
content = "none"
`, dir, pins["exec"]) + hook("webhook")}})
	execRate := rate(b, withExec, 5*time.Second)
	b.ReportMetric(base, "puts/s-no-hooks")
	b.ReportMetric(webhooks, "puts/s-two-webhooks")
	b.ReportMetric(webhooks/base, "ratio-two-webhooks")
	b.ReportMetric(execRate/base, "ratio-webhook+exec")
}

func rate(b *testing.B, srv *server, d time.Duration) float64 {
	body := bytes.Repeat([]byte{0xA5}, 100<<10)
	var n atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/rate/%d/%d.bin", srv.Addr, c, i), bytes.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusCreated {
					b.Errorf("PUT: %v %v", resp, err)
					return
				}
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

func putMany(b *testing.B, srv *server, n, clients, size int, done func(int, string)) {
	body := bytes.Repeat([]byte{0x5A}, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				path := fmt.Sprintf("/bench-hooks/%03d/%d.mp3", i/100, i)
				req, _ := http.NewRequest(http.MethodPut, "http://"+srv.Addr+path, bytes.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusCreated {
					b.Errorf("PUT %s: %v %v", path, resp, err)
					return
				}
				resp.Body.Close()
				done(i, path)
			}
		}()
	}
	wg.Wait()
}
