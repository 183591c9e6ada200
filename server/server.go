// Package server assembles attachd: it opens the store, builds the Kazoo and
// WebDAV handlers behind authentication, serves them with health, readiness
// and metrics endpoints, and drains on shutdown.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/kazoo"
	"github.com/attachd/attachd/server/store"
)

// Server is a running attachd.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	store *store.Store
	auth  *auth.Authenticator
	kazoo *kazoo.Handler
	dav   http.Handler
	reg   *prometheus.Registry
	m     metrics

	plugins    *host.Manager
	dispatcher *hooks.Dispatcher

	ready    atomic.Bool
	inflight sync.WaitGroup
	http     *http.Server
}

// New validates cfg, opens the data directory and builds the handlers. It
// refuses a configuration that would expose the store to the network without
// authentication.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	a, err := auth.New(cfg.Users, cfg.AllowFrom)
	if err != nil {
		return nil, err
	}
	if !a.Enabled() && !cfg.AllowAnonymous && !isLoopback(cfg.Listen) {
		return nil, fmt.Errorf("refusing to listen on %s without authentication: add [[users]] "+
			"(passwords from `attachd hash-password`), listen on a loopback address, or set allow_anonymous = true", cfg.Listen)
	}
	s := &Server{cfg: cfg, log: log, auth: a, reg: prometheus.NewRegistry()}
	// Plugins start first: the store needs the storage plugin as its backend.
	if err := s.startPlugins(); err != nil {
		return nil, err
	}
	opts := store.Options{MaxSize: int64(cfg.MaxBody), Logger: log, Sinks: sinks(cfg)}
	if cfg.Storage.Backend != "local" {
		b, err := s.plugins.Backend(cfg.Storage.Backend)
		if err != nil {
			s.plugins.Close()
			return nil, fmt.Errorf("storage: %w", err)
		}
		opts.Remote, opts.Through = b, cfg.Storage.WriteMode == "through"
	}
	st, err := store.Open(cfg.DataDir, opts)
	if err != nil {
		if s.plugins != nil {
			s.plugins.Close()
		}
		return nil, err
	}
	s.store = st
	if s.dispatcher != nil {
		s.dispatcher.Store = st
	}
	s.kazoo = &kazoo.Handler{Store: st, Base64: cfg.Kazoo.Base64, KeyParams: cfg.Kazoo.KeyParams, MaxBody: int64(cfg.MaxBody), Log: log}
	if cfg.DAV.Enabled {
		if s.dav, err = newDAV(cfg, st, log); err != nil {
			if s.plugins != nil {
				s.plugins.Close()
			}
			st.Close()
			return nil, err
		}
	}
	s.m = newMetrics(s.reg)
	s.reg.MustRegister(outboxCollector{s})
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// readyz answers 200 while the server takes uploads: not while starting or
// draining, nor while its storage plugin is down. The body lists the plugins.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ready, body := s.ready.Load(), ""
	if !ready {
		body = "not ready: starting or draining\n"
	}
	if s.plugins != nil {
		for _, p := range s.plugins.Status() {
			body += fmt.Sprintf("plugin %s: %s", p.Name, p.State)
			if p.LastError != "" {
				body += " (" + p.LastError + ")"
			}
			body += "\n"
			if p.Name == s.cfg.Storage.Backend && p.State != host.Ready && s.cfg.Storage.WriteMode == "through" {
				ready = false
			}
		}
	}
	if !ready {
		http.Error(w, strings.TrimSpace("not ready\n"+body), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n"+body)
}

// isLoopback reports whether the listen address can only be reached from this host.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Store returns the server's store.
func (s *Server) Store() *store.Store { return s.store }

// Handler returns the root HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	protected := func(route string, h http.Handler) http.Handler {
		return s.instrument(route, s.authenticate(route, h))
	}
	if s.dav != nil {
		dav := protected("dav", s.dav)
		mux.Handle("/dav/", dav)
		// gvfs and Windows probe the prefix without its slash; a redirect
		// there breaks PROPFIND, so answer it as the root.
		mux.Handle("/dav", dav)
	}
	kz := protected("kazoo", s.kazoo)
	// Every other path is Kazoo's. Bypass the mux's path cleaning, which would
	// redirect Kazoo's "//" and "/./" URLs: Kazoo must never see a 3xx.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/dav" || strings.HasPrefix(p, "/dav/") {
			mux.ServeHTTP(w, r)
			return
		}
		kz.ServeHTTP(w, r)
	})
}

// authenticate admits a request by client address and credentials, and puts
// the user in the request's context.
func (s *Server) authenticate(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.auth.Authenticate(r)
		switch {
		case errors.Is(err, auth.ErrAddress):
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		case err != nil && route == "dav" && r.Method == http.MethodOptions:
			// Windows' mini-redirector gives up on a 401 to its first,
			// unauthenticated OPTIONS (webdav-anchors §4.1). The WebDAV
			// handler answers it without a user.
			next.ServeHTTP(w, r)
			return
		case err != nil:
			s.m.authFailures.Inc()
			auth.Challenge(w)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.user = u.Name
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), u)))
	})
}

// recorder captures what the access log and metrics need.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	user   string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path open through the recorder.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// instrument gives the request an id, counts it, and logs one access line.
func (s *Server) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.inflight.Add(1)
		defer s.inflight.Done()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		rec := &recorder{ResponseWriter: w}
		s.m.inflight.WithLabelValues(route).Inc()
		next.ServeHTTP(rec, r.WithContext(store.WithRequestID(r.Context(), id)))
		s.m.inflight.WithLabelValues(route).Dec()
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		s.m.observe(route, r.Method, rec.status, r.ContentLength, rec.bytes, d)
		if s.cfg.Log.Access {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("id", id), slog.String("route", route), slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", rec.status),
				slog.Int64("in", max(r.ContentLength, 0)), slog.Int64("out", rec.bytes),
				slog.Duration("duration", d), slog.String("user", rec.user), slog.String("remote", r.RemoteAddr))
		}
	})
}

// Serve serves on ln until ctx is cancelled, then drains: it stops accepting,
// reports not ready, lets requests in flight finish for the grace period,
// cuts the rest (their uploads are discarded) and closes the store.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: time.Duration(s.cfg.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(s.cfg.IdleTimeout),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	bg, stopBG := context.WithCancel(context.Background())
	var bgDone sync.WaitGroup
	if s.dispatcher != nil {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.dispatcher.Run(bg) }()
	}
	if s.cfg.Storage.Backend != "local" && s.cfg.Storage.WriteMode == "spool" {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.store.Replicate(bg) }()
	}
	defer func() {
		stopBG()
		bgDone.Wait()
		if s.plugins != nil {
			s.plugins.Close()
		}
	}()
	s.ready.Store(true)
	s.log.Info("attachd listening", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir)
	select {
	case err := <-errc:
		s.ready.Store(false)
		stopBG()
		bgDone.Wait()
		return errors.Join(err, s.store.Close())
	case <-ctx.Done():
	}
	s.ready.Store(false)
	grace := time.Duration(s.cfg.ShutdownGrace)
	s.log.Info("draining", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		s.log.Warn("grace period over; cutting requests still in flight", "err", err)
		s.http.Close()
	}
	s.inflight.Wait() // handlers of cut connections abort their uploads before returning
	stopBG()
	bgDone.Wait() // deliveries in flight are abandoned to their leases
	err := s.store.Close()
	s.log.Info("stopped")
	return err
}
