// Package tlsconf holds the certificate attachd serves over HTTPS, and the
// CA that clients' certificates must chain to in mutual TLS, and replaces
// them while the server runs: when asked (SIGHUP) and when the files change
// on disk. Connections already open keep the certificate they were made
// with; a new pair that does not load leaves the old one in service.
package tlsconf

import (
	"context"
	"crypto/sha256"
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

// stamp tells whether a file changed since it was read: the SHA-256 of
// its contents. Not its modification time and size: the time has the
// granularity of a kernel tick, and a renewed certificate is often the
// size of the old one. The files are a few kilobytes; reading them every
// few seconds costs nothing.
type stamp [sha256.Size]byte

// missing is the stamp of a file that cannot be read.
var missing = stamp{1}

// readAll reads the files, and stamps what it read.
func readAll(f Files) (data [3][]byte, stamps [3]stamp, errs [3]error) {
	for i, path := range []string{f.CertFile, f.KeyFile, f.ClientCAFile} {
		if path == "" {
			continue
		}
		data[i], errs[i] = os.ReadFile(path)
		stamps[i] = sha256.Sum256(data[i])
		if errs[i] != nil {
			stamps[i] = missing
		}
	}
	return data, stamps, errs
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
	_, _, err := load(f)
	return err
}

// load reads the files and builds what connections get; it returns the
// stamps of what it read, whether it loads or not.
func load(f Files) (*state, [3]stamp, error) {
	data, stamps, errs := readAll(f)
	st, err := parse(f, data, errs)
	if st != nil {
		st.stamps = stamps
	}
	return st, stamps, err
}

func parse(f Files, data [3][]byte, errs [3]error) (*state, error) {
	if errs[0] != nil {
		return nil, &FileError{"cert_file", f.CertFile, errs[0]}
	}
	if errs[1] != nil {
		return nil, &FileError{"key_file", f.KeyFile, errs[1]}
	}
	cert, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		return nil, &FileError{"key_file", f.KeyFile, fmt.Errorf("with cert_file %q: %w", f.CertFile, err)}
	}
	st := &state{files: f, leaf: cert.Leaf}
	st.conf = &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 only: the connection limits and the slow-body guard are
		// per connection, and every client of attachd speaks it.
		NextProtos: []string{"http/1.1"},
	}
	if f.ClientCAFile != "" {
		if errs[2] != nil {
			return nil, &FileError{"client_ca_file", f.ClientCAFile, errs[2]}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data[2]) {
			return nil, &FileError{"client_ca_file", f.ClientCAFile, errors.New("no PEM certificate in it")}
		}
		st.conf.ClientCAs = pool
		st.conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return st, nil
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
	st, _, err := load(f)
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
	st, stamps, err := load(f)
	if err != nil {
		h.failed = stamps
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

// Watch reads the files every interval until ctx ends, and reloads them when they change. A change that does not
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
	_, now, _ := readAll(cur.files)
	if now == cur.stamps || now == h.failed {
		return
	}
	if err := h.reload(cur.files); err != nil {
		h.log.Error("tls: the changed files do not load; still serving the previous certificate",
			"serial", h.Serial(), "err", err)
	}
}
