package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index/pg/pgtest"
)

// A cluster (docs/cluster.md) is N attachd nodes sharing one PostgreSQL
// index ($ATTACHD_TEST_PG_URL, from .ci/postgres.sh) and one storage
// backend, behind a balancer. The tests here play the balancer with a
// round-robin proxy: each request goes to the next node, as the worst
// balancer Kazoo could be behind would send them.
//
// With ATTACHD_E2E_NODES=3 (test.sh), startServer starts such a cluster for
// every test instead of one process: the Kazoo suite and litmus then run
// against three nodes.

// clusterNodes returns the node count ATTACHD_E2E_NODES asks for, or 0.
func clusterNodes(t testing.TB) int {
	v := os.Getenv("ATTACHD_E2E_NODES")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("ATTACHD_E2E_NODES=%q: want a node count", v)
	}
	return n
}

// writeMode is the write mode ATTACHD_E2E_WRITE_MODE asks for (default spool).
func writeMode() string {
	if m := os.Getenv("ATTACHD_E2E_WRITE_MODE"); m != "" {
		return m
	}
	return "spool"
}

// needEnv fails the test (under CI) or skips it when what test.sh starts is
// missing.
func needEnv(t testing.TB, what string, vars ...string) {
	t.Helper()
	for _, v := range vars {
		if os.Getenv(v) == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not set: test.sh starts %s", v, what)
			}
			t.Skipf("%s is not set (run ./test.sh, which starts %s)", v, what)
		}
	}
}

// clusterTOML is the part of a node's configuration that makes it one:
// the shared index and how the others reach it.
func clusterTOML(indexURL, advertise string) string {
	return fmt.Sprintf("\n[index]\nurl = %q\n[cluster]\nadvertise_url = %q\nsecret = \"e2e-cluster-secret-0123456789\"\n",
		indexURL, advertise)
}

// startCluster starts n nodes on one fresh database, each with base (which
// names the shared backend) and its own data directory, and puts a
// round-robin proxy at s.Addr.
func (s *server) startCluster(t testing.TB, n int, base *config) {
	t.Helper()
	if base == nil || os.Getenv("ATTACHD_E2E_BACKEND") == "" && base.Extra == "" {
		t.Fatal("a cluster needs a shared backend: set ATTACHD_E2E_BACKEND")
	}
	s.nodes = startNodes(t, n, *base, pgtest.Database(t))
	s.Addr = roundRobin(t, s.nodes)
}

// startNodes starts n nodes with cfg, on the index at indexURL.
func startNodes(t testing.TB, n int, cfg config, indexURL string) []*server {
	t.Helper()
	nodes := make([]*server, n)
	for i := range nodes {
		node := &server{DataDir: filepath.Join(t.TempDir(), "data"), workDir: t.TempDir(), listen: freeAddr(t)}
		c := cfg
		c.Extra += clusterTOML(indexURL, "http://"+node.listen)
		node.cfgPath = filepath.Join(t.TempDir(), "attachd.toml")
		if err := os.WriteFile(node.cfgPath, []byte(c.toml(t)), 0o600); err != nil {
			t.Fatal(err)
		}
		node.start(t)
		nodes[i] = node
	}
	return nodes
}

// roundRobin starts an HTTP proxy that sends each request to the next of
// nodes, and returns its address. The Host header is left as the client
// sent it, as a balancer does, so that WebDAV's Destination matches it.
func roundRobin(t testing.TB, nodes []*server) string {
	t.Helper()
	var next atomic.Uint64
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			node := nodes[(next.Add(1)-1)%uint64(len(nodes))]
			r.Out.URL.Scheme, r.Out.URL.Host = "http", node.Addr
			r.Out.Host = r.In.Host
		},
		FlushInterval: -1,
		ErrorLog:      nil,
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// sharedBackend returns the TOML of a backend for a cluster test: the
// ATTACHD_E2E_BACKEND one, or Azurite's, in mode.
func sharedBackend(t testing.TB, mode string) string {
	t.Helper()
	kind := os.Getenv("ATTACHD_E2E_BACKEND")
	if kind == "" {
		kind = "azblob"
	}
	return backendTOML(t, kind, mode, uniqueName("cluster"))
}

// do sends one request and reads the whole answer.
func do(t testing.TB, method, rawURL string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, rawURL, err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestClusterOneTruth: three nodes in each write mode. An overwrite on one
// node is read at once, whole and current, on the next, 40 times; a delete
// on one is gone at once from the others' GET and PROPFIND; a WebDAV lock
// taken on one binds the others.
func TestClusterOneTruth(t *testing.T) {
	for _, mode := range []string{"through", "spool"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			nodes := startNodes(t, 3, config{Extra: sharedBackend(t, mode)}, pgtest.Database(t))
			url := func(i int, p string) string { return "http://" + nodes[i%3].Addr + p }

			for i := range 40 {
				body := []byte(fmt.Sprintf("version %d of the voicemail, %s", i, string(make([]byte, i*997))))
				if code, _, b := do(t, "PUT", url(i, "/acct/vm.mp3"), nil, body); code != 201 && code != 204 {
					t.Fatalf("overwrite %d on node %d: %d %s", i, i%3, code, b)
				}
				code, hdr, got := do(t, "GET", url(i+1, "/acct/vm.mp3"), nil, nil)
				if code != 200 || string(got) != string(body) || hdr.Get("Content-Length") != strconv.Itoa(len(body)) {
					t.Fatalf("overwrite %d on node %d, read on node %d: %d, %d bytes (Content-Length %s), want 200 and the %d bytes just stored",
						i, i%3, (i+1)%3, code, len(got), hdr.Get("Content-Length"), len(body))
				}
			}

			// Every node has read it (and would cache it, if it cached).
			for i := range 3 {
				if code, _, _ := do(t, "GET", url(i, "/dav/acct/old.wav"), nil, nil); code != 404 {
					t.Fatalf("node %d: GET of nothing: %d", i, code)
				}
			}
			if code, _, b := do(t, "PUT", url(0, "/dav/acct/old.wav"), nil, []byte("old")); code != 201 {
				t.Fatalf("PUT: %d %s", code, b)
			}
			for i := range 3 {
				if code, _, _ := do(t, "GET", url(i, "/dav/acct/old.wav"), nil, nil); code != 200 {
					t.Fatalf("node %d: GET: %d", i, code)
				}
				do(t, "PROPFIND", url(i, "/dav/acct/"), map[string]string{"Depth": "1"}, nil)
			}
			if code, _, b := do(t, "DELETE", url(1, "/dav/acct/old.wav"), nil, nil); code != 204 {
				t.Fatalf("DELETE on node 1: %d %s", code, b)
			}
			for i := range 3 {
				if code, _, _ := do(t, "GET", url(i, "/dav/acct/old.wav"), nil, nil); code != 404 {
					t.Errorf("node %d: GET after a delete on node 1: %d, want 404", i, code)
				}
				if code, _, _ := do(t, "GET", url(i, "/acct/old.wav"), nil, nil); code != 404 {
					t.Errorf("node %d: Kazoo GET after a delete on node 1: %d, want 404", i, code)
				}
				code, _, b := do(t, "PROPFIND", url(i, "/dav/acct/"), map[string]string{"Depth": "1"}, nil)
				if code != 207 || bytes.Contains(b, []byte("old.wav")) || !bytes.Contains(b, []byte("vm.mp3")) {
					t.Errorf("node %d: PROPFIND after a delete on node 1: %d\n%s", i, code, b)
				}
			}

			// A lock on node 0 binds nodes 1 and 2.
			lockBody := []byte(`<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>` +
				`<D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner></D:lockinfo>`)
			code, hdr, b := do(t, "LOCK", url(0, "/dav/acct/vm.mp3"), map[string]string{"Timeout": "Second-600"}, lockBody)
			token := hdr.Get("Lock-Token")
			if code != 200 || token == "" {
				t.Fatalf("LOCK on node 0: %d %s", code, b)
			}
			if code, _, _ := do(t, "PUT", url(1, "/dav/acct/vm.mp3"), nil, []byte("no token")); code != 423 {
				t.Errorf("PUT without the token on node 1: %d, want 423", code)
			}
			if code, _, _ := do(t, "DELETE", url(2, "/dav/acct/vm.mp3"), nil, nil); code != 423 {
				t.Errorf("DELETE without the token on node 2: %d, want 423", code)
			}
			if code, _, _ := do(t, "PUT", url(2, "/dav/acct/vm.mp3"), map[string]string{"If": "(" + token + ")"}, []byte("with token")); code != 204 {
				t.Errorf("PUT with the token on node 2: %d, want 204", code)
			}
			if code, _, _ := do(t, "UNLOCK", url(1, "/dav/acct/vm.mp3"), map[string]string{"Lock-Token": token}, nil); code != 204 {
				t.Errorf("UNLOCK on node 1: %d, want 204", code)
			}
			if code, _, _ := do(t, "PUT", url(0, "/dav/acct/vm.mp3"), nil, []byte("unlocked")); code != 204 {
				t.Errorf("PUT after UNLOCK on node 0: %d, want 204", code)
			}
		})
	}
}

// TestClusterNodeKilled: uploads through all three nodes, one of them
// killed -9 halfway. Every acknowledged upload reads back whole from
// another node: at once in through mode; in spool mode, what only the dead
// node's spool holds is 503 (never 404) until it is back, then whole, and
// replication finishes.
func TestClusterNodeKilled(t *testing.T) {
	for _, mode := range []string{"through", "spool"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			nodes := startNodes(t, 3, config{Extra: sharedBackend(t, mode)}, pgtest.Database(t))
			var (
				mu    sync.Mutex
				acked = map[string][]byte{}
				stop  atomic.Bool
				wg    sync.WaitGroup
			)
			client := &http.Client{Timeout: 30 * time.Second}
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load() && i < 400; i++ {
						node := nodes[(w+i)%3]
						path := fmt.Sprintf("/acct/w%d/%d.mp3", w, i)
						body := []byte(fmt.Sprintf("%s %s", path, make([]byte, 4000+i*31)))
						resp, err := client.Post("http://"+node.Addr+path, "audio/mpeg", bytes.NewReader(body))
						if err != nil {
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 201 || resp.StatusCode == 200 {
							mu.Lock()
							acked[path] = body
							mu.Unlock()
						}
					}
				}()
			}
			time.Sleep(2 * time.Second)
			nodes[2].kill(t)
			time.Sleep(2 * time.Second)
			stop.Store(true)
			wg.Wait()
			if len(acked) < 30 {
				t.Fatalf("only %d uploads acknowledged", len(acked))
			}

			readAll := func(allow503 bool) (missing, unavailable int) {
				for path, body := range acked {
					code, _, got := do(t, "GET", "http://"+nodes[len(path)%2].Addr+path, nil, nil)
					switch {
					case code == 200 && string(got) == string(body):
					case code == 503 && allow503:
						unavailable++
					default:
						missing++
						if missing < 5 {
							t.Errorf("GET %s: %d, %d bytes, want 200 and %d bytes", path, code, len(got), len(body))
						}
					}
				}
				return missing, unavailable
			}
			missing, unavailable := readAll(mode == "spool")
			t.Logf("%d acknowledged; with node 2 down: %d unavailable (503), %d wrong", len(acked), unavailable, missing)
			if missing > 0 {
				t.Fatalf("%d acknowledged uploads not read back whole", missing)
			}
			if mode == "through" && unavailable > 0 {
				t.Fatalf("%d uploads unavailable in through mode", unavailable)
			}
			nodes[2].restart(t)
			deadline := time.Now().Add(60 * time.Second)
			for {
				missing, unavailable = readAll(true)
				if missing > 0 {
					t.Fatalf("%d acknowledged uploads not read back whole after the restart", missing)
				}
				if unavailable == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d uploads still 503 a minute after node 2 came back", unavailable)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if mode == "spool" {
				// Once node 2's spool is moved on, the others no longer need it.
				waitFor(t, 60*time.Second, "node 2's spool to drain", func() bool { return localBlobs(t, nodes[2].DataDir) == 0 })
				nodes[2].kill(t)
				if missing, unavailable := readAll(false); missing+unavailable > 0 {
					t.Fatalf("with node 2 down again after replication: %d wrong, %d unavailable", missing, unavailable)
				}
			}
		})
	}
}

// TestClusterHooksEveryEvent: 1 000 stores spread over three nodes with a
// webhook that fails a tenth of the time, one node killed -9 halfway with
// deliveries claimed: every event of an acknowledged store is delivered,
// counted at the receiver; the dead node's claims are taken over by the
// others once their leases run out.
func TestClusterHooksEveryEvent(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, 0.1)
	cfg := webhookOnBackend(t, r, sharedBackend(t, "spool"))
	nodes := startNodes(t, 3, *cfg, pgtest.Database(t))
	var (
		mu    sync.Mutex
		acked []string
	)
	store := func(from, to, nodeCount int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := from; i < to; i++ {
			key := fmt.Sprintf("acct/hooks/%04d.mp3", i)
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if code, err := put(t, nodes[i%nodeCount], "/"+key, []byte(key)); err == nil && code == 201 {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	store(0, 500, 3)
	nodes[2].kill(t) // with deliveries queued, and some claimed by it
	store(500, 1000, 2)
	if len(acked) < 1000 {
		t.Fatalf("%d of 1000 stores acknowledged", len(acked))
	}
	r.waitAll(t, acked, "attachment.created", 2*time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) < 1000 {
		t.Errorf("%d distinct events delivered, want 1000", len(r.events))
	}
	dup := 0
	for _, n := range r.events {
		dup += n - 1
	}
	t.Logf("1000 stores over 3 nodes, one killed: %d events, %d delivered twice or more (at least once)", len(r.events), dup)
}

// webhookOnBackend is webhookConfig with the bytes in the storage backend
// that backend (a backendTOML) names.
func webhookOnBackend(t testing.TB, r *receiver, backend string) *config {
	_, pins := plugins(t)
	// backendTOML opens with [plugins]: the hook's tables go after it.
	return &config{Extra: fmt.Sprintf("hooks = [\"webhook\"]\n%s\n[plugin.webhook]\nsha256 = %q\n[plugin.webhook.config]\nurl = %q\nsecret = %q\ntimeout = \"2s\"\n[hook.webhook]\nconcurrency = 8\ntimeout = \"2s\"\nmin_backoff = \"50ms\"\nmax_backoff = \"1s\"\n",
		backend, pins["webhook"], r.srv.URL, r.secret)}
}

// TestClusterIndexUnreachableAtStart: a node whose PostgreSQL cannot be
// reached says which host and port, and exits non-zero.
func TestClusterIndexUnreachableAtStart(t *testing.T) {
	t.Parallel()
	dead := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "attachd.toml")
	toml := sharedBackend(t, "through") + fmt.Sprintf("\n[index]\nurl = \"postgres://attachd:hunter2@%s/attachd?sslmode=disable\"\n", dead)
	os.WriteFile(cfgPath, []byte(toml), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, attachdBinary(t), "serve", "--listen", freeAddr(t), "--data-dir", t.TempDir(), "--config", cfgPath).CombinedOutput()
	if err == nil {
		t.Fatalf("serve with an unreachable index exited 0:\n%s", out)
	}
	if !bytes.Contains(out, []byte(dead)) || bytes.Contains(out, []byte("hunter2")) {
		t.Errorf("error does not name %s, or shows the password:\n%s", dead, out)
	}
}

// TestClusterIndexLost: PostgreSQL lost while the nodes run (its
// connections cut and refused, through a proxy the test controls): stores
// and reads answer 503 fast, /readyz is 503; when it is back, they recover
// by themselves and nothing partial is left.
func TestClusterIndexLost(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Database(t)
	u, _ := url.Parse(dbURL)
	cut := newCutProxy(t, u.Host)
	u.Host = cut.addr
	nodes := startNodes(t, 2, config{Extra: sharedBackend(t, "through")}, u.String())
	a, b := "http://"+nodes[0].Addr, "http://"+nodes[1].Addr
	if code, _, body := do(t, "PUT", a+"/acct/before.mp3", nil, []byte("before")); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}

	cut.set(false)
	for _, tc := range []struct {
		method, url string
		body        []byte
	}{
		{"PUT", a + "/acct/during.mp3", []byte("during")}, {"GET", b + "/acct/before.mp3", nil},
		{"PROPFIND", b + "/dav/acct/", nil}, {"GET", b + "/dav/acct/before.mp3", nil},
	} {
		start := time.Now()
		code, _, body := do(t, tc.method, tc.url, map[string]string{"Depth": "1"}, tc.body)
		if took := time.Since(start); code != 503 || took > 15*time.Second {
			t.Errorf("%s %s with PostgreSQL gone: %d after %v, want 503 within 15 s: %s", tc.method, tc.url, code, took, body)
		}
	}
	// /readyz remembers its last check for a second.
	waitFor(t, 10*time.Second, "/readyz to be 503", func() bool {
		code, _, _ := do(t, "GET", a+"/readyz", nil, nil)
		return code == 503
	})

	cut.set(true)
	waitFor(t, 30*time.Second, "/readyz to be 200 again", func() bool {
		code, _, _ := do(t, "GET", a+"/readyz", nil, nil)
		return code == 200
	})
	if code, _, body := do(t, "PUT", b+"/acct/after.mp3", nil, []byte("after")); code != 201 {
		t.Fatalf("PUT after PostgreSQL came back: %d %s", code, body)
	}
	for _, p := range []string{"before", "after"} {
		if code, _, body := do(t, "GET", a+"/acct/"+p+".mp3", nil, nil); code != 200 || string(body) != p {
			t.Errorf("GET %s after: %d %q", p, code, body)
		}
	}
	if code, _, _ := do(t, "GET", a+"/acct/during.mp3", nil, nil); code != 404 {
		t.Errorf("the store refused while PostgreSQL was gone is there: %d", code)
	}
}

// cutProxy forwards TCP to PostgreSQL until set(false) cuts every
// connection and refuses new ones.
type cutProxy struct {
	addr   string
	target string
	ln     net.Listener
	mu     sync.Mutex
	up     bool
	conns  map[net.Conn]bool
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), target: target, ln: ln, up: true, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.set(false) })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	d, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[d] = true, true
	p.mu.Unlock()
	go func() { io.Copy(d, c); d.Close() }()
	io.Copy(c, d)
	c.Close()
}

func (p *cutProxy) set(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// TestClusterQuota: Kazoo stores racing into a folder with a quota, spread
// over three nodes, fill it exactly: PostgreSQL keeps the folder's usage row
// (the nodes start at once and each asks for it), and every store reads it
// again inside its transaction, where the nodes' writers take turns. Every
// node then reports the same usage.
func TestClusterQuota(t *testing.T) {
	t.Parallel()
	quota := "[[quota]]\nprefix = \"/acct\"\nobjects = 4\n\n"
	nodes := startNodes(t, 3, config{Extra: quota + sharedBackend(t, "through")}, pgtest.Database(t))
	start := make(chan struct{})
	codes := make(chan string, 24)
	for i := range cap(codes) {
		go func() {
			<-start
			u := fmt.Sprintf("http://%s/acct/race-%02d.mp3", nodes[i%3].Addr, i)
			req, err := http.NewRequest("PUT", u, strings.NewReader("ten bytes!"))
			if err != nil {
				codes <- err.Error()
				return
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- err.Error()
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes <- strconv.Itoa(res.StatusCode)
		}()
	}
	close(start)
	got := map[string]int{}
	for range cap(codes) {
		got[<-codes]++
	}
	if got["201"] != 4 || got["507"] != cap(codes)-4 {
		t.Fatalf("answers of %d racing stores over three nodes into a 4-object quota: %v; want 4 × 201 and the rest 507",
			cap(codes), got)
	}
	for i, n := range nodes {
		_, _, b := do(t, "GET", "http://"+n.Addr+"/metrics", nil, nil)
		for _, want := range []string{`attachd_quota_used_objects{quota="/acct"} 4`, `attachd_quota_used_bytes{quota="/acct"} 40`} {
			if !strings.Contains(string(b), want+"\n") {
				t.Errorf("node %d: /metrics lacks %s", i, want)
			}
		}
	}
}

// TestClusterReadCache: each node reads an object's bytes from the backend
// once, then from its own copy (the node that stored it, in through mode,
// never from the backend); the copies hold the stored bytes, and a delete
// on one node is 404 on every node at once, copies or not.
func TestClusterReadCache(t *testing.T) {
	for _, mode := range []string{"through", "spool"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			nodes := startNodes(t, 3, config{Extra: sharedBackend(t, mode)}, pgtest.Database(t))
			url := func(i int, p string) string { return "http://" + nodes[i].Addr + p }
			body := bytes.Repeat([]byte("a voicemail of some length "), 12000)
			if code, _, b := do(t, "PUT", url(0, "/acct/cached.mp3"), nil, body); code != 201 {
				t.Fatalf("PUT on node 0: %d %s", code, b)
			}
			for i := 1; i < 3; i++ {
				for range 3 {
					if code, _, got := do(t, "GET", url(i, "/acct/cached.mp3"), nil, nil); code != 200 || !bytes.Equal(got, body) {
						t.Fatalf("node %d: GET: %d, %d bytes", i, code, len(got))
					}
				}
				m := scrape(t, nodes[i])
				for name, want := range map[string]float64{"attachd_read_cache_misses_total": 1, "attachd_read_cache_fills_total": 1,
					"attachd_read_cache_hits_total": 2, "attachd_read_cache_copies": 1} {
					if v, _ := find(m, name); v != want {
						t.Errorf("node %d after three GETs: %s = %v, want %v", i, name, v, want)
					}
				}
			}
			if mode == "through" {
				do(t, "GET", url(0, "/acct/cached.mp3"), nil, nil)
				m := scrape(t, nodes[0])
				if hits, _ := find(m, "attachd_read_cache_hits_total"); hits != 1 {
					t.Errorf("node 0, which stored the object: %v reads from its copy, want 1", hits)
				}
				if misses, _ := find(m, "attachd_read_cache_misses_total"); misses != 0 {
					t.Errorf("node 0, which stored the object: %v reads from the backend, want 0", misses)
				}
			}
			if code, _, b := do(t, "DELETE", url(1, "/dav/acct/cached.mp3"), nil, nil); code != 204 {
				t.Fatalf("DELETE on node 1: %d %s", code, b)
			}
			for i := range 3 {
				if code, _, _ := do(t, "GET", url(i, "/acct/cached.mp3"), nil, nil); code != 404 {
					t.Errorf("node %d: GET after a delete on node 1: %d, want 404", i, code)
				}
			}
		})
	}
}
