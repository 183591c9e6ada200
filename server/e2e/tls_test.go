package e2e

// HTTPS ([tls]) and reloading the configuration on SIGHUP, through the
// built binary: Kazoo's captures replayed over TLS, rclone with the test's
// CA, mutual TLS, certificates replaced under an upload in flight, and
// users, the log level and restart-only keys changed by a reload.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attachd/attachd/server/tlsconf/tlstest"
)

// tlsFiles are a CA and a server certificate of it, as PEM files.
type tlsFiles struct {
	dir       string
	ca        *tlstest.CA
	leaf      *tlstest.Leaf
	cert, key string
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir(), ca: tlstest.NewCA(t, "attachd e2e CA")}
	f.leaf = f.ca.Server(t)
	f.cert, f.key = f.leaf.Write(t, f.dir, "server")
	return f
}

// toml is the [tls] table, with extra keys of it.
func (f *tlsFiles) toml(extra string) string {
	return fmt.Sprintf("\n[tls]\ncert_file = %q\nkey_file = %q\n%s\n", f.cert, f.key, extra)
}

// client trusts the CA.
func (f *tlsFiles) client() *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
}

// serial returns the serial of the certificate a new connection is given.
func serial(t *testing.T, srv *server) string {
	t.Helper()
	c, err := srv.dial(5 * time.Second)
	if err != nil {
		t.Fatalf("TLS connection: %v", err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// TestTLSKazooContract replays Kazoo's stores and fetches over HTTPS, and
// sees TLS 1.1 and plain HTTP refused.
func TestTLSKazooContract(t *testing.T) {
	t.Parallel()
	f := newTLSFiles(t)
	srv := startServer(t, serverOptions{Config: &config{Extra: f.toml("")}, TLS: f.client()})
	n := 0
	for _, sc := range shapeScenarios() {
		if sc.hasExactGet() {
			storeScenario(t, srv, sc)
			fetchScenario(t, srv, sc)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no scenario replayed")
	}

	old := f.client()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if c, err := tls.Dial("tcp", srv.Addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was served")
	}
	res, err := http.Get("http://" + srv.Addr + "/readyz")
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %d, want 400", res.StatusCode)
	}
}

// TestTLSRclone copies a tree over WebDAV on HTTPS with rclone, trusting
// the test's CA, and checks it byte by byte.
func TestTLSRclone(t *testing.T) {
	t.Parallel()
	davNeedTools(t, "rclone")
	f := newTLSFiles(t)
	srv := startServer(t, serverOptions{Config: &config{Extra: f.toml("")}, TLS: f.client()})
	caFile := filepath.Join(f.dir, "ca.pem")
	tlstest.WriteFile(t, caFile, f.ca.PEM)
	env := append(os.Environ(), "RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_X_TYPE=webdav",
		"RCLONE_CONFIG_X_URL="+srv.baseURL()+"/dav/", "RCLONE_CONFIG_X_VENDOR=other")
	src := t.TempDir()
	files := davTree(t, src)
	work := t.TempDir()
	davRun(t, work, env, "rclone", "--ca-cert", caFile, "copy", src, "X:tls-up")
	out := davRun(t, work, env, "rclone", "--ca-cert", caFile, "check", "--download", src, "X:tls-up")
	if !strings.Contains(out, "0 differences found") {
		t.Errorf("rclone check --download:\n%s", out)
	}
	back := t.TempDir()
	davRun(t, work, env, "rclone", "--ca-cert", caFile, "copy", "X:tls-up", back)
	davSameTree(t, back, files)
	// Without the CA, rclone refuses the server.
	cmd := exec.Command("rclone", "lsf", "X:tls-up")
	cmd.Dir, cmd.Env = work, env
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("rclone trusted a server certificate of an unknown CA:\n%s", out)
	}
}

// TestTLSMutual: with client_ca_file, a client without a certificate, or
// with one of another CA, is refused; one with a certificate of the CA is
// served.
func TestTLSMutual(t *testing.T) {
	t.Parallel()
	f := newTLSFiles(t)
	clients := tlstest.NewCA(t, "Kazoo clients")
	caFile := filepath.Join(f.dir, "clients.pem")
	tlstest.WriteFile(t, caFile, clients.PEM)
	kazoo := f.client()
	kazoo.Certificates = []tls.Certificate{clients.Client(t, "kazoo").TLS(t)}
	srv := startServer(t, serverOptions{Config: &config{Extra: f.toml(fmt.Sprintf("client_ca_file = %q", caFile))}, TLS: kazoo})
	body := []byte("a voicemail over mutual TLS")
	wantStored(t, "PUT with a client certificate", srv.put(t, "/mtls/vm.mp3", "audio/mpeg", body))
	wantObject(t, "GET with a client certificate", srv.get(t, "/mtls/vm.mp3"), body, "audio/mpeg")

	stranger := f.client()
	stranger.Certificates = []tls.Certificate{tlstest.NewCA(t, "another CA").Client(t, "kazoo").TLS(t)}
	for name, conf := range map[string]*tls.Config{"no certificate": f.client(), "another CA's certificate": stranger} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
		res, err := c.Get(srv.baseURL() + "/mtls/vm.mp3")
		if err == nil {
			res.Body.Close()
			t.Errorf("a client with %s was answered %d", name, res.StatusCode)
		}
	}
}

// TestTLSCertificateReplaced replaces the certificate while an upload is in
// flight, then sends SIGHUP (or, with watch_interval, waits for the poll):
// new connections get the new certificate, the upload finishes on its
// connection under the old one and is stored whole; no restart.
func TestTLSCertificateReplaced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		watch string
		hup   bool
	}{{"SIGHUP", "0s", true}, {"poll", "100ms", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTLSFiles(t)
			srv := startServer(t, serverOptions{Config: &config{Extra: f.toml(fmt.Sprintf("watch_interval = %q", tc.watch))}, TLS: f.client()})
			pid := srv.proc.cmd.Process.Pid
			oldSerial := f.leaf.Cert.SerialNumber.Text(16)
			if got := serial(t, srv); got != oldSerial {
				t.Fatalf("serial %s, want %s", got, oldSerial)
			}

			// An upload, half sent.
			body := make([]byte, 1<<20)
			rand.Read(body)
			conn, err := srv.dial(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			fmt.Fprintf(conn, "PUT /reload/inflight.bin HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", srv.Addr, len(body))
			if _, err := conn.Write(body[:len(body)/2]); err != nil {
				t.Fatal(err)
			}

			next := f.ca.Server(t)
			next.Write(t, f.dir, "server")
			newSerial := next.Cert.SerialNumber.Text(16)
			if tc.hup {
				// No poll: nothing changes until SIGHUP.
				time.Sleep(300 * time.Millisecond)
				if got := serial(t, srv); got != oldSerial {
					t.Fatalf("certificate changed before SIGHUP with watch_interval = 0s: %s", got)
				}
				srv.hup(t)
			}
			deadline := time.Now().Add(20 * time.Second)
			for serial(t, srv) != newSerial {
				if time.Now().After(deadline) {
					t.Fatalf("new connections still get serial %s, not the new %s", oldSerial, newSerial)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got := conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16); got != oldSerial {
				t.Errorf("the upload's connection has serial %s, want the old %s", got, oldSerial)
			}

			// The rest of the upload, on its connection.
			if _, err := conn.Write(body[len(body)/2:]); err != nil {
				t.Fatalf("finishing the upload: %v", err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "PUT"})
			if err != nil {
				t.Fatalf("the upload's answer: %v", err)
			}
			wantStored(t, "the upload in flight", readAll(t, res))
			got := srv.get(t, "/reload/inflight.bin")
			if got.StatusCode != http.StatusOK || sha256.Sum256(got.Body) != sha256.Sum256(body) {
				t.Fatalf("the upload in flight: GET %d, %d bytes, want the %d bytes sent", got.StatusCode, len(got.Body), len(body))
			}
			if srv.proc.cmd.Process.Pid != pid || !strings.Contains(srv.proc.out.String(), "tls: certificate loaded") {
				t.Errorf("no reload logged:\n%s", srv.proc.out.String())
			}
		})
	}
}

// TestReload: SIGHUP applies a new configuration without a restart: a new
// user logs in and a removed one cannot, the log level changes, a key that
// needs a restart is named; a configuration that does not load changes
// nothing and says why.
func TestReload(t *testing.T) {
	t.Parallel()
	alice := user{"alice", "alice-secret", "rw"}
	bob := user{"bob", "bob-secret", "rw"}
	srv := startServer(t, serverOptions{Config: &config{Users: []user{alice}}})
	pid := srv.proc.cmd.Process.Pid
	put := func(u user, path string) int {
		t.Helper()
		req, _ := http.NewRequest("PUT", srv.baseURL()+path, strings.NewReader("x"))
		req.SetBasicAuth(u.Name, u.Password)
		res, err := srv.httpClient(30 * time.Second).Do(req)
		if err != nil {
			t.Fatalf("PUT %s as %s: %v", path, u.Name, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := put(alice, "/reload/alice-1"); code != http.StatusCreated {
		t.Fatalf("alice before the reload: %d", code)
	}
	if code := put(bob, "/reload/bob-1"); code != http.StatusUnauthorized {
		t.Fatalf("bob before the reload: %d", code)
	}
	srv.waitLog(t, "/reload/alice-1", 1) // the access line, at level info

	// bob in alice's place, the level raised to warn, and max_body (restart only).
	srv.rewriteConfig(t, config{Users: []user{bob}, MaxBody: 1 << 20, Extra: "\n[log]\nlevel = \"warn\"\n"})
	srv.hup(t)
	srv.waitLog(t, "take effect only after a restart", 1)
	out := srv.proc.out.String()
	if !strings.Contains(out, `keys=max_body`) {
		t.Errorf("the restart-only key is not named:\n%s", out)
	}
	if !strings.Contains(out, "configuration reloaded") || !strings.Contains(out, "users") || !strings.Contains(out, "log.level") {
		t.Errorf("the reloaded keys are not named:\n%s", out)
	}
	if code := put(bob, "/reload/bob-2"); code != http.StatusCreated {
		t.Errorf("bob after the reload: %d", code)
	}
	if code := put(alice, "/reload/alice-2"); code != http.StatusUnauthorized {
		t.Errorf("alice, removed, after the reload: %d", code)
	}
	if strings.Contains(srv.proc.out.String(), "/reload/bob-2") {
		t.Errorf("an access line (info) logged at level warn:\n%s", srv.proc.out.String())
	}

	// A file that does not load: refused, bob still served, the error named.
	bad := config{Users: []user{bob}, Extra: "\n[limits]\nmax_uploads = -1\n"}
	srv.rewriteConfig(t, bad)
	srv.hup(t)
	srv.waitLog(t, "reload refused", 1)
	if out := srv.proc.out.String(); !strings.Contains(out, "limits.max_uploads: must not be negative") {
		t.Errorf("the refused reload does not say why:\n%s", out)
	}
	if code := put(bob, "/reload/bob-3"); code != http.StatusCreated {
		t.Errorf("bob after a refused reload: %d", code)
	}
	if code := put(alice, "/reload/alice-3"); code != http.StatusUnauthorized {
		t.Errorf("alice after a refused reload: %d", code)
	}

	// Back to info: access lines again.
	srv.rewriteConfig(t, config{Users: []user{bob}, MaxBody: 1 << 20})
	srv.hup(t)
	srv.waitLog(t, "configuration reloaded", 2)
	if code := put(bob, "/reload/bob-4"); code != http.StatusCreated {
		t.Errorf("bob after the third reload: %d", code)
	}
	srv.waitLog(t, "/reload/bob-4", 1)
	if strings.Contains(srv.proc.out.String(), "/reload/bob-2") {
		t.Errorf("an access line (info) logged at level warn:\n%s", srv.proc.out.String())
	}
	if srv.proc.cmd.Process.Pid != pid {
		t.Fatal("the server restarted")
	}
}

// hup sends SIGHUP to the server.
func (s *server) hup(t *testing.T) {
	t.Helper()
	if err := s.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// rewriteConfig replaces the server's configuration file.
func (s *server) rewriteConfig(t *testing.T, c config) {
	t.Helper()
	tlstest.WriteFile(t, s.cfgPath, []byte(c.toml(t)))
}

// waitLog waits until the server's output holds substr n times.
func (s *server) waitLog(t *testing.T, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s.proc.out.String(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged %d times within 30 s:\n%s", substr, n, s.proc.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
