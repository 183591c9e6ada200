package e2e

import (
	"bufio"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape reads s's /metrics.
func scrape(t testing.TB, s *server) []sample {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := sampleLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", sc.Text(), err)
		}
		ls := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			ls[p[1]] = p[2]
		}
		out = append(out, sample{m[1], ls, v})
	}
	return out
}

// find returns the value of the sample named name whose labels include
// want (label, value pairs), and whether there is one.
func find(samples []sample, name string, want ...string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// TestMetricsNames: the operational metrics docs/operations.md lists exist
// under their names and labels, the hook's label is "hook" everywhere, and
// a plugin's restarts are counted from its supervisor.
func TestMetricsNames(t *testing.T) {
	if clusterNodes(t) > 0 {
		t.Skip("one node's plugin is killed")
	}
	r := newReceiver(t, 0)
	srv := startServer(t, serverOptions{Config: webhookConfig(t, r, `min_backoff = "50ms"`)})
	body := []byte("twelve bytes")
	if code, err := put(t, srv, "/metrics/one.mp3", body); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v", code, err)
	}
	r.waitAll(t, []string{"metrics/one.mp3"}, "attachment.created", 30*time.Second)

	m := scrape(t, srv)
	for _, want := range []struct {
		name   string
		labels []string
		value  float64 // -1: any
	}{
		{"attachd_objects", nil, 1},
		{"attachd_stored_bytes", nil, float64(len(body))},
		{"attachd_plugin_up", []string{"plugin", "webhook"}, 1},
		{"attachd_plugin_restarts_total", []string{"plugin", "webhook"}, 0},
		{"attachd_hook_deliveries_total", []string{"hook", "webhook", "outcome", "ok"}, 1},
		{"attachd_hook_queue_depth", []string{"hook", "webhook"}, 0},
		{"attachd_hook_oldest_pending_seconds", []string{"hook", "webhook"}, 0},
		{"attachd_hook_dead_letters", []string{"hook", "webhook"}, 0},
		{"attachd_http_requests_total", []string{"route", "kazoo", "method", "PUT", "code", "201"}, 1},
		{"attachd_http_request_duration_seconds_count", []string{"route", "kazoo", "method", "PUT"}, 1},
		{"attachd_auth_failures_total", nil, 0},
	} {
		v, ok := find(m, want.name, want.labels...)
		if !ok {
			t.Errorf("/metrics lacks %s%q", want.name, want.labels)
		} else if want.value >= 0 && v != want.value {
			t.Errorf("%s%q = %v, want %v", want.name, want.labels, v, want.value)
		}
	}
	var info *sample
	for i := range m {
		if m[i].name == "attachd_build_info" {
			info = &m[i]
		}
		if _, ok := m[i].labels["sink"]; ok {
			t.Errorf("%s has a sink label: hooks are labelled hook, as in the logs", m[i].name)
		}
	}
	switch {
	case info == nil:
		t.Error("/metrics lacks attachd_build_info")
	case info.value != 1 || info.labels["version"] == "" || strings.Contains(info.labels["version"], " ") || !strings.HasPrefix(info.labels["goversion"], "go"):
		t.Errorf("attachd_build_info = %v %v", info.value, info.labels)
	default:
		if _, ok := info.labels["commit"]; !ok {
			t.Errorf("attachd_build_info has no commit label: %v", info.labels)
		}
	}

	// Kill the plugin: the supervisor restarts it, and /metrics says so.
	pid := childNamed(srv.proc.cmd.Process.Pid, "attachd-plugin-webhook")
	if pid == 0 {
		t.Fatal("no webhook plugin process")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "attachd_plugin_restarts_total 1 and the plugin up again", func() bool {
		m := scrape(t, srv)
		restarts, _ := find(m, "attachd_plugin_restarts_total", "plugin", "webhook")
		up, _ := find(m, "attachd_plugin_up", "plugin", "webhook")
		return restarts == 1 && up == 1
	})
}
