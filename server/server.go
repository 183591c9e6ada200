// Package server assembles attachd: it opens the store, builds the Kazoo and
// WebDAV handlers behind authentication, serves them with health, readiness
// and metrics endpoints, and drains on shutdown.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
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
	"github.com/attachd/attachd/server/dav"
	"github.com/attachd/attachd/server/forwarded"
	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/kazoo"
	"github.com/attachd/attachd/server/retention"
	"github.com/attachd/attachd/server/store"
	"github.com/attachd/attachd/server/tlsconf"
	"github.com/attachd/attachd/server/ui"
)

// Server is a running attachd.
type Server struct {
	cfg   config.Config // as started; what a reload changes is in live
	log   *slog.Logger
	store *store.Store
	kazoo *kazoo.Handler
	dav   *dav.Handler
	ui    *ui.Handler // nil unless [ui] enabled
	reg   *prometheus.Registry
	m     metrics

	storagePlugins *host.Manager // the storage backend's, started before the store
	hookPlugins    *host.Manager // the hooks', started once the store is open
	dispatcher     *hooks.Dispatcher

	ready    atomic.Bool
	health   storeHealth
	inflight sync.WaitGroup
	lull     lull         // trims when the requests stop (lull.go)
	uploads  atomic.Int64 // requests storing a body now, against max_uploads
	http     *http.Server

	publicHost   string                            // host of public_url, a same-origin Origin too
	publicScheme string                            // its scheme
	proxies      atomic.Pointer[forwarded.Proxies] // trusted_proxies; swapped whole on reload

	// What a reload replaces (reload.go): each request reads it once.
	live     atomic.Pointer[live]
	reloadMu sync.Mutex // one reload at a time
	tls      *tlsconf.Holder
	sweeper  *retention.Sweeper
	// LogLevel, if set, is the level of the logger the server was given;
	// a reload sets it to [log] level.
	LogLevel *slog.LevelVar
}

// New validates cfg, opens the data directory and builds the handlers. It
// refuses a configuration that would expose the store to the network without
// authentication.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	l, err := newLive(cfg, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	s.live.Store(l)
	if cfg.TLS.Enabled() {
		if s.tls, err = tlsconf.New(cfg.TLS.Files(), log); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	if err := s.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public_url: %w", err)
		}
		s.publicHost, s.publicScheme = u.Host, u.Scheme
	}
	if err := s.open(); err != nil {
		s.closePlugins()
		return nil, err
	}
	s.m = newMetrics(s.reg)
	s.reg.MustRegister(outboxCollector{s}, quotaCollector{s}, pluginCollector{s}, &usageCollector{s: s}, readCacheCollector{s}, buildInfo())
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// open starts what serves in order, each part given what it needs: the
// storage plugin, the store over it, the hook plugins reading from the store,
// then the front ends. On failure, what was opened is closed again; the
// caller closes the plugins.
func (s *Server) open() error {
	cfg := s.cfg
	backend, err := s.startStorage()
	if err != nil {
		return err
	}
	opts := store.Options{MaxSize: int64(cfg.MaxBody), Logger: s.log, Sinks: sinks(cfg), IndexURL: cfg.Index.URL,
		BlobGrace: time.Duration(cfg.Index.BlobGrace), Quotas: cfg.StoreQuotas()}
	if backend != nil {
		opts.Remote, opts.Through = backend, cfg.Storage.WriteMode == store.WriteThrough
		opts.ReadCache = int64(cfg.Storage.ReadCache)
		if c := cfg.Cluster; c.AdvertiseURL != "" {
			opts.Peers = newPeers(backend, c.AdvertiseURL, c.Secret)
			opts.Node = strings.TrimPrefix(nodeName(c.AdvertiseURL), nodesPrefix)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := registerNode(ctx, backend, c.AdvertiseURL)
			cancel()
			if err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
		}
	}
	if s.store, err = store.Open(cfg.DataDir, opts); err != nil {
		return err
	}
	if err := s.startHooks(); err != nil {
		s.store.Close()
		return err
	}
	s.kazoo = &kazoo.Handler{Store: s.store, Base64: cfg.Kazoo.Base64, KeyParams: cfg.Kazoo.KeyParams,
		MaxFetchMeta: int64(cfg.Limits.MaxFetchMeta), Log: s.log}
	if cfg.DAV.Enabled {
		if s.dav, err = newDAV(cfg, s.store, s.log); err != nil {
			s.store.Close()
			return err
		}
	}
	if cfg.UI.Enabled {
		s.ui, err = ui.New(ui.Options{Store: s.store, Auth: func() *auth.Authenticator { return s.now().auth }, Log: s.log,
			SessionIdle: time.Duration(cfg.UI.SessionIdle), SessionMax: time.Duration(cfg.UI.SessionMax),
			Secret: cfg.Cluster.Secret, SecureCookies: strings.HasPrefix(cfg.PublicURL, "https:"), PageSize: cfg.UI.PageSize,
			HTTPS: func(r *http.Request) bool { return clientOf(r).Scheme == "https" },
			SignedIn: func(w http.ResponseWriter, user string) {
				if rec, ok := w.(*recorder); ok {
					rec.user = user
				}
			}})
		if err != nil {
			s.store.Close()
			return err
		}
	}
	return nil
}

// readyz answers 200 while the server takes uploads: not while starting or
// draining, nor while its storage plugin is down. The body lists the plugins.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ready, body := s.ready.Load(), ""
	if !ready {
		body = "not ready: starting or draining\n"
	}
	if err := s.health.check(r.Context(), s.store); err != nil {
		ready = false
		body += "store: " + err.Error() + "\n"
	}
	if plugins := s.pluginStatus(); len(plugins) > 0 {
		for _, p := range plugins {
			body += fmt.Sprintf("plugin %s: %s", p.Name, p.State)
			if p.LastError != "" {
				body += " (" + p.LastError + ")"
			}
			body += "\n"
			if p.Name == s.cfg.Storage.Backend && p.State != host.Ready && s.cfg.Storage.WriteMode == store.WriteThrough {
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

// accounts turns [[users]] tables into logins.
func accounts(users []config.User) []auth.Account {
	out := make([]auth.Account, len(users))
	for i, u := range users {
		out[i] = auth.Account{Name: u.Name, PasswordHash: u.PasswordHash, Root: u.Root, Write: u.Permissions == "rw"}
	}
	return out
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
	// A failing collector is logged, not answered with a 500: its error
	// text may name files of the host (/proc, the data directory).
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	})
	protected := func(route string, h http.Handler) http.Handler {
		return s.instrument(route, s.guard(s.authenticate(route, s.limitUploads(h))))
	}
	var davRoute http.Handler
	if s.dav != nil {
		davRoute = protected("dav", s.dav)
	}
	kz := protected("kazoo", s.kazoo)
	var uiRoute http.Handler
	if s.ui != nil {
		// The browser signs in with a form and a session cookie (server/ui),
		// not Basic auth; allow_from and the cross-site check still hold.
		uiRoute = s.instrument("ui", s.guard(s.ui))
	}
	// Every path but these is Kazoo's. No mux: its path cleaning would
	// redirect Kazoo's "//" and "/./" URLs, and Kazoo must never see a 3xx.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", nosniff)
		h.Set("Content-Security-Policy", sandboxed)
		r, err := s.withClient(r)
		if err != nil {
			s.log.Warn("request refused: its forwarding headers name two clients", "remote", r.RemoteAddr, "err", err)
			http.Error(w, "bad request: Forwarded and X-Forwarded-For name different clients", http.StatusBadRequest)
			return
		}
		s.limitBody(w, r)
		p := r.URL.Path
		switch {
		case p == "/healthz" || p == "/readyz":
			// Local probes (systemd, a container's health check) always
			// pass; allow_from holds for every other client.
			if !auth.IsLoopback(r.RemoteAddr) && !s.now().auth.AddressAllowed(r.RemoteAddr) {
				http.Error(w, "forbidden: client address not allowed", http.StatusForbidden)
				return
			}
			if p == "/readyz" {
				s.readyz(w, r)
				return
			}
			io.WriteString(w, "ok\n")
		case p == "/metrics":
			if s.metricsAllowed(w, r) {
				metrics.ServeHTTP(w, r)
			}
		case s.cfg.Cluster.Secret != "" && strings.HasPrefix(p, peerPrefix):
			// Another node reading this one's spool (cluster.go).
			if !s.now().auth.AddressAllowed(r.RemoteAddr) {
				http.Error(w, "forbidden: client address not allowed", http.StatusForbidden)
				return
			}
			s.peerBlob(w, r)
		case uiRoute != nil && (p == "/ui" || strings.HasPrefix(p, ui.Prefix)):
			uiRoute.ServeHTTP(w, r)
		case davRoute != nil && (p == "/dav" || strings.HasPrefix(p, "/dav/")):
			// gvfs and Windows probe the prefix without its slash; a
			// redirect there breaks PROPFIND, so /dav is the root too.
			davRoute.ServeHTTP(w, r)
		case davRoute != nil && p == "/" && r.Method == http.MethodOptions:
			// Windows' WebClient asks the server root first, even to map
			// a folder below it, and gives up unless it looks like WebDAV.
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = "/dav/", ""
			davRoute.ServeHTTP(w, r2)
		default:
			kz.ServeHTTP(w, r)
		}
	})
}

// metricsAllowed admits a scrape: allow_from, then [metrics] allow_from
// (loopback only when empty), then the [metrics] user's login if one is set.
// Otherwise it answers the request and returns false.
func (s *Server) metricsAllowed(w http.ResponseWriter, r *http.Request) bool {
	l := s.now()
	addrOK := l.auth.AddressAllowed(r.RemoteAddr)
	if len(l.metricsAllow) == 0 {
		addrOK = addrOK && auth.IsLoopback(r.RemoteAddr)
	} else {
		addrOK = addrOK && l.metricsAllow.Contains(r.RemoteAddr)
	}
	if !addrOK {
		http.Error(w, "forbidden: client address not allowed", http.StatusForbidden)
		return false
	}
	name := l.cfg.Metrics.User
	if name == "" {
		return true
	}
	u, err := l.auth.Authenticate(r)
	if err == nil && u.Name == name {
		return true
	}
	s.refuseLogin(w, err)
	return false
}

// guard refuses what no credentials make acceptable: a client address
// outside allow_from, and a browser's request that changes state on behalf
// of another site.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.now().auth.AddressAllowed(r.RemoteAddr) {
			http.Error(w, "forbidden: client address not allowed", http.StatusForbidden)
			return
		}
		if s.crossSite(r) {
			http.Error(w, "forbidden: cross-origin request refused (its Origin or Sec-Fetch-Site "+
				"names another site); send it from attachd's own origin", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate admits a request by client address and credentials, and puts
// the user in the request's context.
func (s *Server) authenticate(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.now().auth.Authenticate(r)
		switch {
		case errors.Is(err, auth.ErrAddress):
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		case err != nil && route == "dav" && r.Method == http.MethodOptions:
			// Windows' mini-redirector gives up on a 401 to its first,
			// unauthenticated OPTIONS (docs/webdav-clients.md §4.1). The WebDAV
			// handler answers it without a user.
			next.ServeHTTP(w, r)
			return
		case err != nil:
			s.refuseLogin(w, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.user = u.Name
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), u)))
	})
}

// refuseLogin answers a request whose credentials were missing, wrong or
// refused for too many failures (err, from Authenticate; nil for a login
// that is not the one required).
func (s *Server) refuseLogin(w http.ResponseWriter, err error) {
	s.m.authFailures.Inc()
	var rl *auth.RateLimitError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rl.RetryAfter.Seconds()))))
		http.Error(w, "too many failed logins; try again later", http.StatusTooManyRequests)
		return
	}
	if errors.Is(err, auth.ErrAddress) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	auth.Challenge(w)
}

// recorder captures what the access log and metrics need. If the request
// body was cut for being too slow, it answers 408 in place of the error the
// handler reports for its failed body.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	user   string
	body   *slowBody // the request's body, if it has one
	cut    bool      // the handler's answer is replaced by a 408
}

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		r.ResponseWriter.WriteHeader(code) // superfluous: net/http logs it
		return
	}
	r.status = code
	if code >= 400 && r.body != nil && r.body.cut.Load() {
		r.status, r.cut = http.StatusRequestTimeout, true
		h := r.Header()
		h.Del("Content-Length")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Connection", "close")
		r.ResponseWriter.WriteHeader(r.status)
		n, _ := io.WriteString(r.ResponseWriter, "request body too slow: the upload was cut and nothing was stored\n")
		r.bytes += int64(n)
		return
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.cut {
		return len(p), nil
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path open through the recorder.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.cut {
		return io.Copy(io.Discard, src)
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
		s.lull.begin()
		defer s.lull.end()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		rec := &recorder{ResponseWriter: w}
		rec.body, _ = r.Body.(*slowBody)
		s.m.inflight.WithLabelValues(route).Inc()
		next.ServeHTTP(rec, r.WithContext(store.WithRequestID(r.Context(), id)))
		s.m.inflight.WithLabelValues(route).Dec()
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		s.m.observe(route, r.Method, rec.status, r.ContentLength, rec.bytes, d)
		if s.now().cfg.Log.Access {
			s.accessLog(r, rec, route, id, d)
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
	if n := s.cfg.Limits.MaxConnections; n > 0 {
		// Past max_connections, new connections wait in the kernel's
		// accept queue until one closes.
		ln = newLimitListener(ln, n)
	}
	if s.tls != nil {
		// Inside the limit: a handshake holds a connection as a request does.
		ln = tls.NewListener(ln, s.tls.Config())
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	bg, stopBG := context.WithCancel(context.Background())
	var bgDone sync.WaitGroup
	if s.dispatcher != nil {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.dispatcher.Run(bg) }()
	}
	if s.cfg.Storage.Remote() && s.cfg.Storage.WriteMode == store.WriteSpool {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.store.Replicate(bg) }()
	}
	if s.cfg.Index.URL != "" {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.store.CollectBlobs(bg) }()
	}
	bgDone.Add(1)
	go func() { defer bgDone.Done(); s.store.SweepReadCache(bg) }()
	s.startRetention(bg, &bgDone)
	if s.tls != nil {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.tls.Watch(bg, time.Duration(s.cfg.TLS.WatchInterval)) }()
	}
	// Objects whose bytes a switch of backend left behind (stranded.go).
	bgDone.Add(1)
	go func() { defer bgDone.Done(); s.checkStranded(bg) }()
	s.lull.start(lullAfter, s.trim)
	defer func() {
		s.lull.stop()
		stopBG()
		bgDone.Wait()
		if s.dav != nil {
			s.dav.Close()
		}
		s.closePlugins()
	}()
	s.ready.Store(true)
	if s.tls != nil {
		s.log.Info("attachd listening", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir, "tls", true,
			"serial", s.tls.Serial(), "client_certificates", s.cfg.TLS.ClientCAFile != "")
	} else {
		s.log.Info("attachd listening", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir, "tls", false)
	}
	select {
	case err := <-errc:
		s.ready.Store(false)
		s.lull.stop()
		stopBG()
		bgDone.Wait()
		return errors.Join(err, s.store.Close())
	case <-ctx.Done():
	}
	s.ready.Store(false)
	grace := time.Duration(s.cfg.ShutdownGrace)
	s.log.Info("draining", "grace_ms", grace.Milliseconds())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		s.log.Warn("grace period over; cutting requests still in flight", "err", err)
		s.http.Close()
	}
	s.inflight.Wait() // handlers of cut connections abort their uploads before returning
	s.lull.stop()
	stopBG()
	bgDone.Wait() // deliveries in flight are abandoned to their leases
	err := s.store.Close()
	s.log.Info("stopped")
	return err
}
