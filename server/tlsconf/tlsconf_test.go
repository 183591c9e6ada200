package tlsconf_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/server/tlsconf"
	"github.com/attachd/attachd/server/tlsconf/tlstest"
)

// serve accepts TLS connections with h's configuration until the test
// ends; each connection is answered with one byte and closed.
func serve(t *testing.T, h *tlsconf.Holder) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(ln, h.Config())
	var wg sync.WaitGroup
	t.Cleanup(func() { tl.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte{1})
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial makes a TLS connection, reads the server's byte, and returns the
// serial of the certificate the server presented.
func dial(addr string, conf *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// With TLS 1.3 a refused client certificate shows on the first read.
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

func TestServeAndReplace(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	first := ca.Server(t)
	cf, kf := first.Write(t, dir, "server")
	var logs bytes.Buffer
	h, err := tlsconf.New(tlsconf.Files{CertFile: cf, KeyFile: kf}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h)
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	got, err := dial(addr, client)
	if err != nil || got != first.Cert.SerialNumber.Text(16) {
		t.Fatalf("first certificate: serial %s, %v; want %s", got, err, first.Cert.SerialNumber.Text(16))
	}

	// Replaced on disk: served after Reload.
	second := ca.Server(t)
	second.Write(t, dir, "server")
	if err := h.Reload(tlsconf.Files{CertFile: cf, KeyFile: kf}); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(addr, client); err != nil || got != second.Cert.SerialNumber.Text(16) {
		t.Fatalf("after Reload: serial %s, %v; want %s", got, err, second.Cert.SerialNumber.Text(16))
	}
	if h.Serial() != second.Cert.SerialNumber.Text(16) {
		t.Errorf("Serial() = %s", h.Serial())
	}
	if !strings.Contains(logs.String(), "tls: certificate loaded") {
		t.Errorf("no log line for the new certificate:\n%s", logs.String())
	}

	// A key that is not the certificate's: refused, the old pair serves on.
	other := ca.Server(t)
	tlstest.WriteFile(t, cf, other.CertPEM)
	err = h.Reload(tlsconf.Files{CertFile: cf, KeyFile: kf})
	var fe *tlsconf.FileError
	if !errors.As(err, &fe) || fe.Field != "key_file" {
		t.Fatalf("mismatched pair: err %v, want a FileError on key_file", err)
	}
	if got, err := dial(addr, client); err != nil || got != second.Cert.SerialNumber.Text(16) {
		t.Fatalf("after a failed Reload: serial %s, %v; want the previous %s", got, err, second.Cert.SerialNumber.Text(16))
	}
}

func TestTLS11Refused(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cf, kf := ca.Server(t).Write(t, dir, "server")
	h, err := tlsconf.New(tlsconf.Files{CertFile: cf, KeyFile: kf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h)
	old := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, err := dial(addr, old); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}); err != nil {
		t.Fatalf("a TLS 1.2 client: %v", err)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cf, kf := ca.Server(t).Write(t, dir, "server")
	var logs syncBuffer
	h, err := tlsconf.New(tlsconf.Files{CertFile: cf, KeyFile: kf}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	// Half a change (the certificate, not yet its key): logged, not served.
	next := ca.Server(t)
	tlstest.WriteFile(t, cf, next.CertPEM)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "do not load") })
	if h.Serial() == next.Cert.SerialNumber.Text(16) {
		t.Fatal("a certificate without its key was served")
	}
	// Logged once, not at every poll.
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Errorf("the failed load was logged %d times, want once:\n%s", n, logs.String())
	}
	// The key follows: served.
	tlstest.WriteFile(t, kf, next.KeyPEM)
	waitFor(t, func() bool { return h.Serial() == next.Cert.SerialNumber.Text(16) })
}

func TestMutual(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	clients := tlstest.NewCA(t, "client CA")
	cf, kf := ca.Server(t).Write(t, dir, "server")
	caFile := filepath.Join(dir, "clients.pem")
	tlstest.WriteFile(t, caFile, clients.PEM)
	files := tlsconf.Files{CertFile: cf, KeyFile: kf, ClientCAFile: caFile}
	h, err := tlsconf.New(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, h)
	base := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if _, err := dial(addr, base); err == nil {
		t.Error("a client without a certificate was served")
	}
	kazoo := base.Clone()
	kazoo.Certificates = []tls.Certificate{clients.Client(t, "kazoo").TLS(t)}
	if _, err := dial(addr, kazoo); err != nil {
		t.Errorf("a client with a certificate of client_ca_file: %v", err)
	}
	stranger := base.Clone()
	stranger.Certificates = []tls.Certificate{tlstest.NewCA(t, "other").Client(t, "kazoo").TLS(t)}
	if _, err := dial(addr, stranger); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}

	// The client CA replaced: the new one's clients are served, the old one's not.
	clients2 := tlstest.NewCA(t, "client CA 2")
	tlstest.WriteFile(t, caFile, clients2.PEM)
	if err := h.Reload(files); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, kazoo); err == nil {
		t.Error("a client of the replaced CA was still served")
	}
	kazoo2 := base.Clone()
	kazoo2.Certificates = []tls.Certificate{clients2.Client(t, "kazoo").TLS(t)}
	if _, err := dial(addr, kazoo2); err != nil {
		t.Errorf("a client of the new CA: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cf, kf := ca.Server(t).Write(t, dir, "server")
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM\n"), 0o600)
	for _, tc := range []struct {
		name  string
		files tlsconf.Files
		field string
	}{
		{"missing cert", tlsconf.Files{CertFile: filepath.Join(dir, "nope"), KeyFile: kf}, "cert_file"},
		{"missing key", tlsconf.Files{CertFile: cf, KeyFile: filepath.Join(dir, "nope")}, "key_file"},
		{"junk cert", tlsconf.Files{CertFile: junk, KeyFile: kf}, "key_file"},
		{"junk client CA", tlsconf.Files{CertFile: cf, KeyFile: kf, ClientCAFile: junk}, "client_ca_file"},
		{"missing client CA", tlsconf.Files{CertFile: cf, KeyFile: kf, ClientCAFile: filepath.Join(dir, "nope")}, "client_ca_file"},
	} {
		err := tlsconf.Load(tc.files)
		var fe *tlsconf.FileError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err %v, want a FileError on %s", tc.name, err, tc.field)
		}
	}
	if err := tlsconf.Load(tlsconf.Files{CertFile: cf, KeyFile: kf}); err != nil {
		t.Errorf("a good pair: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
