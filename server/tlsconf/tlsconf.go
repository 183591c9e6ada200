// Package tlsconf holds the certificate attachd serves over HTTPS, and the
// CA that clients' certificates must chain to in mutual TLS, and replaces
// them while the server runs: when asked (SIGHUP) and when the files change
// on disk. Connections already open keep the certificate they were made
// with; a new pair that does not load leaves the old one in service.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MinVersion is the oldest protocol served: TLS 1.0 and 1.1 are broken
// (RFC 8996), and every client attachd serves speaks 1.2.
const MinVersion = tls.VersionTLS12

// Files names the PEM files of a configuration ([tls] in the TOML file).
type Files struct {
	CertFile     string // the certificate chain, leaf first
	KeyFile      string // its private key
	ClientCAFile string // CAs a client's certificate must chain to; "": none asked for
}

// FileError is an error about one of the files; Field is its key in the
// [tls] table ("cert_file", "key_file", "client_ca_file").
type FileError struct {
	Field string
	Path  string
	Err   error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %q: %v", e.Field, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// stamp tells whether a file changed since it was read, without reading it.
type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) stamp {
	if path == "" {
		return stamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{size: -1} // gone: a change, tried and logged once
	}
	return stamp{fi.ModTime(), fi.Size()}
}

// state is one loaded configuration: what a new connection gets.
type state struct {
	files  Files
	stamps [3]stamp
	conf   *tls.Config
	leaf   *x509.Certificate
}

// Load reads and checks the files, as New and Reload would.
func Load(f Files) error {
	_, err := load(f)
	return err
}

func load(f Files) (*state, error) {
	st := &state{files: f, stamps: stamps(f)}
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, &FileError{"cert_file", f.CertFile, err}
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, &FileError{"key_file", f.KeyFile, err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &FileError{"key_file", f.KeyFile, fmt.Errorf("with cert_file %q: %w", f.CertFile, err)}
	}
	st.leaf = cert.Leaf
	st.conf = &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 only: the connection limits and the slow-body guard are
		// per connection, and every client of attachd speaks it.
		NextProtos: []string{"http/1.1"},
	}
	if f.ClientCAFile != "" {
		caPEM, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, &FileError{"client_ca_file", f.ClientCAFile, err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, &FileError{"client_ca_file", f.ClientCAFile, errors.New("no PEM certificate in it")}
		}
		st.conf.ClientCAs = pool
		st.conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return st, nil
}

func stamps(f Files) [3]stamp {
	return [3]stamp{stampOf(f.CertFile), stampOf(f.KeyFile), stampOf(f.ClientCAFile)}
}

// Holder serves the current certificate and client CAs to each new
// connection, and replaces them.
type Holder struct {
	cur atomic.Pointer[state]
	log *slog.Logger

	mu     sync.Mutex // one load at a time
	failed [3]stamp   // the files as they were when a load last failed
}

// New loads the files. log receives what Reload and Watch do; nil: slog.Default().
func New(f Files, log *slog.Logger) (*Holder, error) {
	if log == nil {
		log = slog.Default()
	}
	st, err := load(f)
	if err != nil {
		return nil, err
	}
	h := &Holder{log: log}
	h.cur.Store(st)
	return h, nil
}

// Config returns the configuration to serve with (tls.NewListener): every
// handshake takes the certificate and CAs current at that moment.
func (h *Holder) Config() *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return h.cur.Load().conf, nil
		},
	}
}

// Serial returns the serial number of the certificate served now, in hex.
func (h *Holder) Serial() string { return h.cur.Load().leaf.SerialNumber.Text(16) }

// Reload reads f, which may name other files than the current ones, and
// serves it to new connections. On error the current pair stays in service.
func (h *Holder) Reload(f Files) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reload(f)
}

func (h *Holder) reload(f Files) error {
	st, err := load(f)
	if err != nil {
		h.failed = stamps(f)
		return err
	}
	old := h.cur.Swap(st)
	h.failed = [3]stamp{}
	if old.leaf.SerialNumber.Cmp(st.leaf.SerialNumber) != 0 || old.files != f {
		h.log.Info("tls: certificate loaded", "serial", h.Serial(), "subject", st.leaf.Subject.String(),
			"not_after", st.leaf.NotAfter.UTC().Format(time.RFC3339), "cert_file", f.CertFile)
	}
	return nil
}

// Watch checks the files' modification times and sizes every interval
// until ctx ends, and reloads them when they change. A change that does not
// load (a key not yet written beside its new certificate) is logged once
// and tried again at the files' next change.
func (h *Holder) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.check()
	}
}

// check reloads the files if they changed since they were loaded, or since
// a load of them last failed.
func (h *Holder) check() {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.cur.Load()
	now := stamps(cur.files)
	if now == cur.stamps || now == h.failed {
		return
	}
	if err := h.reload(cur.files); err != nil {
		h.log.Error("tls: the changed files do not load; still serving the previous certificate",
			"serial", h.Serial(), "err", err)
	}
}
