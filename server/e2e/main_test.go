// Package e2e drives the built attachd binary the way Kazoo does: requests
// are replayed byte for byte over raw TCP from the captures in
// testdata/kazoo (see docs/kazoo.md §1, §2, §4 and §6), and responses
// are read with http.ReadResponse.
//
// TestMain builds github.com/attachd/attachd once (or uses the binary named
// by $ATTACHD_E2E_BINARY); every test starts its own server on 127.0.0.1
// with its own data directory and stops it by PID when it ends.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var (
	attachdBin string // path of the binary under test
	buildErr   error  // why there is none
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if p := os.Getenv("ATTACHD_E2E_BINARY"); p != "" {
		attachdBin = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "attachd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "attachd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/attachd/attachd").CombinedOutput()
	if err != nil {
		buildErr = fmt.Errorf("go build github.com/attachd/attachd: %v\n%s", err, out)
	} else {
		attachdBin = bin
	}
	return m.Run()
}

// attachdBinary returns the attachd binary or fails the test.
func attachdBinary(t testing.TB) string {
	t.Helper()
	if attachdBin == "" {
		t.Fatalf("attachd binary unavailable: %v", buildErr)
	}
	return attachdBin
}

// A user is one [[users]] entry.
type user struct {
	Name, Password, Permissions string
}

// config is the subset of attachd's TOML configuration the suite uses.
type config struct {
	Base64  string // [kazoo] base64: "auto", "always", "never"; "" leaves the default
	MaxBody int64  // max_body in bytes; 0 leaves the default
	Users   []user
	Extra   string // raw TOML put before the tables
}

// toml renders c, hashing passwords with bcrypt.
func (c config) toml(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	if c.MaxBody > 0 {
		fmt.Fprintf(&b, "max_body = %d\n", c.MaxBody)
	}
	b.WriteString(c.Extra) // may open tables: top-level keys go before it
	if c.Base64 != "" {
		fmt.Fprintf(&b, "\n[kazoo]\nbase64 = %q\n", c.Base64)
	}
	for _, u := range c.Users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n[[users]]\nname = %q\npassword_hash = %q\npermissions = %q\n", u.Name, hash, u.Permissions)
	}
	return b.String()
}

// serverOptions configure one attachd process.
type serverOptions struct {
	Config  *config // nil: no --config
	DataDir string  // "": a fresh temporary directory
	WorkDir string  // "": a fresh temporary directory
	// TLS, for a server configured with [tls], is how clients of the
	// suite reach it (its CA, a client certificate); nil: plain HTTP.
	TLS *tls.Config
}

// A server is one running attachd process.
type server struct {
	DataDir string
	Addr    string // 127.0.0.1:port

	workDir string
	cfgPath string
	proc    *process
	listen  string // the address to listen on, or "" for a free port

	tlsClient *tls.Config // serverOptions.TLS

	// In a cluster run (ATTACHD_E2E_NODES), the nodes behind Addr, which is
	// then a round-robin proxy; proc is nil.
	nodes []*server
}

// A process is one started attachd and what it printed.
type process struct {
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
	err    error // Wait's result, set before exited closes
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 64<<10; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// startServer starts attachd and waits until /readyz answers 200.
func startServer(t testing.TB, opts serverOptions) *server {
	t.Helper()
	s := &server{DataDir: opts.DataDir, workDir: opts.WorkDir, tlsClient: opts.TLS}
	if s.DataDir == "" {
		s.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if s.workDir == "" {
		s.workDir = t.TempDir()
	}
	if kind := os.Getenv("ATTACHD_E2E_BACKEND"); kind != "" {
		// Run the suite with the bytes in a storage plugin (test.sh runs it
		// once per backend): the Kazoo contract and WebDAV must not change.
		if opts.Config == nil {
			opts.Config = &config{}
		}
		if !strings.Contains(opts.Config.Extra, "[plugins]") {
			c := *opts.Config
			c.Extra += backendTOML(t, kind, writeMode(), uniqueName("e2e")) + "\n"
			opts.Config = &c
		}
	}
	if n := clusterNodes(t); n > 0 {
		s.startCluster(t, n, opts.Config)
		return s
	}
	if opts.Config != nil {
		s.cfgPath = filepath.Join(t.TempDir(), "attachd.toml")
		if err := os.WriteFile(s.cfgPath, []byte(opts.Config.toml(t)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.start(t)
	return s
}

// start runs a new process on s's data directory, retrying on a new port if
// the chosen one was taken in the meantime.
func (s *server) start(t testing.TB) {
	t.Helper()
	bin := attachdBinary(t)
	for attempt := 1; ; attempt++ {
		s.Addr = s.listen
		if s.Addr == "" {
			s.Addr = freeAddr(t)
		}
		args := []string{"serve", "--listen", s.Addr, "--data-dir", s.DataDir}
		if s.cfgPath != "" {
			args = append(args, "--config", s.cfgPath)
		}
		p := &process{cmd: exec.Command(bin, args...), out: &tailBuffer{}, exited: make(chan struct{})}
		p.cmd.Dir = s.workDir
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start attachd: %v", err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.exited)
		}()
		t.Cleanup(func() { p.cleanup(t) })
		s.proc = p
		err := s.waitReady(10 * time.Second)
		if err == nil {
			return
		}
		// A process that never got ready gets no graceful stop.
		p.cmd.Process.Kill()
		<-p.exited
		if attempt < 3 && s.listen == "" && strings.Contains(p.out.String(), "address already in use") {
			continue
		}
		t.Fatalf("attachd %s: %v\n--- output ---\n%s", strings.Join(args, " "), err, p.out.String())
	}
}

// waitReady polls GET /readyz until it answers 200, the process exits or
// the deadline passes.
func (s *server) waitReady(limit time.Duration) error {
	client := s.httpClient(time.Second)
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.proc.exited:
			return fmt.Errorf("exited before ready: %v", s.proc.err)
		default:
		}
		resp, err := client.Get(s.baseURL() + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /readyz not 200 within %v (last error %v)", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// baseURL is the server's http:// or https:// URL, without a slash.
func (s *server) baseURL() string {
	if s.tlsClient != nil {
		return "https://" + s.Addr
	}
	return "http://" + s.Addr
}

// httpClient returns a client for the server, over TLS if it serves it.
func (s *server) httpClient(timeout time.Duration) *http.Client {
	if s.tlsClient == nil {
		return &http.Client{Timeout: timeout}
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: s.tlsClient.Clone()}}
}

// dial connects to the server, with a TLS handshake if it serves TLS.
func (s *server) dial(timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tlsClient != nil {
		return tls.DialWithDialer(d, "tcp", s.Addr, s.tlsClient)
	}
	return d.Dial("tcp", s.Addr)
}

// cleanup stops the process if it still runs: SIGTERM, then SIGKILL after
// 10 s. It prints the server's output when the test failed.
func (p *process) cleanup(t testing.TB) {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("attachd pid %d ignored SIGTERM for 10 s; killing it", p.cmd.Process.Pid)
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if t.Failed() {
		t.Logf("attachd pid %d output (tail):\n%s", p.cmd.Process.Pid, p.out.String())
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (s *server) stop(t testing.TB) {
	t.Helper()
	s.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("attachd pid %d did not exit within 10 s of SIGTERM", s.proc.cmd.Process.Pid)
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to exit.
func (s *server) kill(t testing.TB) {
	t.Helper()
	s.proc.cmd.Process.Kill()
	<-s.proc.exited
}

// restart starts a new process on the same data directory and config.
func (s *server) restart(t testing.TB) {
	t.Helper()
	select {
	case <-s.proc.exited:
	default:
		t.Fatalf("restart of a running attachd")
	}
	s.start(t)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A response is a fully read HTTP response.
type response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Raw        string // status line and headers, for messages
}

func (r *response) String() string {
	body := r.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("%s[%d body bytes] %q", r.Raw, len(r.Body), body)
}

// rewriteHost points the host header of a capture's head at addr. It is the
// only change replay makes to a capture.
func rewriteHost(t testing.TB, raw []byte, addr string) []byte {
	t.Helper()
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		t.Fatalf("capture has no end of header block")
	}
	head := raw[:end+2]
	old := []byte("\r\nhost: " + placeholderHost + "\r\n")
	if bytes.Count(head, old) != 1 {
		t.Fatalf("capture head lacks exactly one %q", old)
	}
	out := make([]byte, 0, len(raw))
	out = append(out, bytes.Replace(head, old, []byte("\r\nhost: "+addr+"\r\n"), 1)...)
	return append(out, raw[end+2:]...)
}

// requestMethod returns the method of a raw request.
func requestMethod(raw []byte) string {
	m, _, _ := strings.Cut(string(raw[:min(len(raw), 16)]), " ")
	return m
}

// exchange sends head and then body (which may be nil) over a new TCP
// connection and returns the response with its body unread; closing the
// body closes the connection. The whole exchange must finish within
// timeout. The request is written concurrently with reading the response,
// as a server may answer (401, 413) before it has read the body.
func (s *server) exchange(t testing.TB, head []byte, body io.Reader, timeout time.Duration) (*http.Response, error) {
	t.Helper()
	head = rewriteHost(t, head, s.Addr)
	conn, err := s.dial(5 * time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	go func() {
		if _, err := conn.Write(head); err != nil {
			return
		}
		if body != nil {
			io.Copy(conn, body)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: requestMethod(head)})
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body = readCloser{resp.Body, conn}
	return resp, nil
}

// readCloser closes the connection along with the body.
type readCloser struct {
	io.Reader
	conn net.Conn
}

func (r readCloser) Close() error { return r.conn.Close() }

// replay sends a complete raw request, typically a capture, byte for byte
// and returns the response read in full.
func (s *server) replay(t testing.TB, raw []byte) *response {
	t.Helper()
	resp, err := s.exchange(t, raw, nil, 60*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", firstLine(raw), err)
	}
	return readAll(t, resp)
}

// readAll reads and closes resp.
func readAll(t testing.TB, resp *http.Response) *response {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	var raw strings.Builder
	fmt.Fprintf(&raw, "%s %s\n", resp.Proto, resp.Status)
	resp.Header.Write(&raw)
	return &response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body, Raw: raw.String()}
}

// firstLine returns the request line of raw, for messages.
func firstLine(raw []byte) string {
	l, _, _ := bytes.Cut(raw, []byte("\r\n"))
	return fmt.Sprintf("%q", l)
}

// get sends Kazoo's GET for target (a request-target as on the wire).
func (s *server) get(t testing.TB, target string, extra ...string) *response {
	t.Helper()
	return s.replay(t, wireRequest{Method: "GET", URL: kazooBase + target, Extra: extra}.bytes())
}

// put sends Kazoo's raw PUT of body to target.
func (s *server) put(t testing.TB, target, contentType string, body []byte) *response {
	t.Helper()
	return s.replay(t, wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: contentType, Body: body}.bytes())
}

// sha returns the hex SHA-256 of b.
func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// mappedStatus reports whether Kazoo's kz_http_util:http_code_to_status_line
// knows code; any other error code crashes the Kazoo process (docs/kazoo.md
// §5).
func mappedStatus(code int) bool {
	switch {
	case code >= 400 && code <= 418, code >= 421 && code <= 424, code >= 500 && code <= 508:
		return true
	}
	switch code {
	case 426, 428, 429, 431, 444, 451, 499, 510, 511, 599:
		return true
	}
	return false
}

// wantStatus fails unless r has status code want.
func wantStatus(t testing.TB, what string, r *response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Errorf("%s: status %d, want %d\n%s", what, r.StatusCode, want, r)
	}
}

// wantStored fails unless a store was answered 201 (never 3xx, §6.24).
func wantStored(t testing.TB, what string, r *response) {
	t.Helper()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("%s: store answered %d, want 201\n%s", what, r.StatusCode, r)
	}
}

// wantError fails unless r is an error status Kazoo can map (docs/kazoo.md
// §5) and, when allowed is given, one of allowed.
func wantError(t testing.TB, what string, r *response, allowed ...int) {
	t.Helper()
	ok := mappedStatus(r.StatusCode)
	if ok && len(allowed) > 0 {
		ok = false
		for _, c := range allowed {
			ok = ok || r.StatusCode == c
		}
	}
	if !ok {
		t.Errorf("%s: status %d, want an error from Kazoo's mapped list %v\n%s", what, r.StatusCode, allowed, r)
	}
}

// wantObject fails unless r is a 200 carrying exactly media: SHA-256 of the
// body, Content-Length, the stored Content-Type, a strong ETag of the
// SHA-256 and no Content-Encoding.
func wantObject(t testing.TB, what string, r *response, media []byte, contentType string) {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d, want 200\n%s", what, r.StatusCode, r)
		return
	}
	if got, want := sha(r.Body), sha(media); got != want {
		t.Errorf("%s: body sha256 %s (%d bytes), want %s (%d bytes)", what, got, len(r.Body), want, len(media))
	}
	wantHeaders(t, what, r.Header, int64(len(media)), sha(media), contentType)
}

// wantHeaders checks the entity headers of a GET or HEAD answer.
func wantHeaders(t testing.TB, what string, h http.Header, size int64, sum, contentType string) {
	t.Helper()
	if got, want := h.Get("Content-Length"), fmt.Sprint(size); got != want {
		t.Errorf("%s: Content-Length %q, want %q", what, got, want)
	}
	if got, want := h.Get("ETag"), `"`+sum+`"`; got != want {
		t.Errorf("%s: ETag %q, want %q", what, got, want)
	}
	if contentType != "" && h.Get("Content-Type") != contentType {
		t.Errorf("%s: Content-Type %q, want %q", what, h.Get("Content-Type"), contentType)
	}
	if ce := h.Values("Content-Encoding"); len(ce) > 0 {
		t.Errorf("%s: Content-Encoding %q, want none", what, ce)
	}
}

// readCapture returns testdata/kazoo/name.
func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("%v (generate with: go test ./server/e2e -run TestGenerateCaptures -update)", err)
	}
	return b
}

// captureBody returns the body of a raw request.
func captureBody(raw []byte) []byte {
	_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return body
}

// tmpEntries lists <data-dir>/tmp; a missing directory is empty.
func tmpEntries(t testing.TB, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "tmp"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
