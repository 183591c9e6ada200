package server

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/forwarded"
	"github.com/attachd/attachd/server/retention"
)

// live is what a reload replaces at once. A request reads it once and
// keeps what it read, so that a reload never changes the rules under a
// request in flight.
type live struct {
	cfg          config.Config // the started configuration with the reloaded keys applied
	auth         *auth.Authenticator
	metricsAllow auth.AllowList // [metrics] allow_from; empty: loopback only
}

// now returns the configuration in force.
func (s *Server) now() *live { return s.live.Load() }

// reloadable are the keys a reload applies: a key, or a table or array of
// tables whose every key is. Any other key that changed is named in the log
// as needing a restart, and keeps its running value.
var reloadable = []string{
	"users", "allow_from", "allow_anonymous", "trusted_proxies",
	"metrics.allow_from", "metrics.user",
	"log.level", "log.access",
	"limits.auth_failures", "limits.max_uploads", "limits.body_idle_timeout", "limits.min_body_rate",
	"hook", "retention", "hold", "retention_sweep",
	"tls.cert_file", "tls.key_file", "tls.client_ca_file",
}

func isReloadable(key string) bool {
	for _, r := range reloadable {
		if key == r || strings.HasPrefix(key, r+".") {
			return true
		}
	}
	return false
}

// apply returns cur with the reloadable keys of next.
func apply(cur, next config.Config) config.Config {
	c := cur
	c.Users, c.AllowFrom, c.AllowAnonymous = next.Users, next.AllowFrom, next.AllowAnonymous
	c.TrustedProxies = next.TrustedProxies
	c.Metrics.AllowFrom, c.Metrics.User = next.Metrics.AllowFrom, next.Metrics.User
	c.Log.Level, c.Log.Access = next.Log.Level, next.Log.Access
	c.Limits.AuthFailures, c.Limits.MaxUploads = next.Limits.AuthFailures, next.Limits.MaxUploads
	c.Limits.BodyIdleTimeout, c.Limits.MinBodyRate = next.Limits.BodyIdleTimeout, next.Limits.MinBodyRate
	c.Hook = next.Hook
	c.Retention, c.Hold, c.RetentionSweep = next.Retention, next.Hold, next.RetentionSweep
	if cur.TLS.Enabled() && next.TLS.Enabled() {
		// The files, not the watch interval; turning TLS on or off
		// changes the listener, so it needs a restart.
		c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile = next.TLS.CertFile, next.TLS.KeyFile, next.TLS.ClientCAFile
	}
	return c
}

// newLive builds what requests read from cfg; old, if not nil, is the live
// state it replaces.
func newLive(cfg config.Config, old *live) (*live, error) {
	a, err := auth.New(accounts(cfg.Users), cfg.AllowFrom)
	if err != nil {
		return nil, err
	}
	if !a.Enabled() && !cfg.AllowAnonymous && !isLoopback(cfg.Listen) {
		return nil, fmt.Errorf("refusing to listen on %s without authentication: add [[users]] "+
			"(passwords from `attachd hash-password`), listen on a loopback address, or set allow_anonymous = true", cfg.Listen)
	}
	a.LimitFailures(cfg.Limits.AuthFailures)
	if old != nil {
		// A reload does not forgive the failed logins counted so far.
		a.KeepFailures(old.auth)
	}
	l := &live{cfg: cfg, auth: a}
	if l.metricsAllow, err = auth.ParseAllowList(cfg.Metrics.AllowFrom); err != nil {
		return nil, fmt.Errorf("metrics.allow_from: %w", err)
	}
	return l, nil
}

// Reload applies the reloadable keys of next, a configuration validated by
// config.Load, to the running server: users, allow lists and trusted
// proxies, the log level, limits on uploads and logins, the hooks' delivery
// settings, the retention rules and the TLS files (read again even if their
// names did not change). Requests in flight finish
// under the configuration they started with. The keys that changed but
// need a restart are logged by name and keep their running values. If any
// part does not apply, nothing changes and the error says why.
func (s *Server) Reload(next config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.now()
	changed := config.Changed(cur.cfg, next)
	var restart []string
	for _, k := range changed {
		if !isReloadable(k) || (strings.HasPrefix(k, "tls.") && cur.cfg.TLS.Enabled() != next.TLS.Enabled()) {
			restart = append(restart, k)
		}
	}
	if !reflect.DeepEqual(s.cfg.StoreQuotas(), next.StoreQuotas()) && !slices.Contains(restart, "quota") {
		// The store's quotas are fixed when it opens; users' ride in
		// "users", reloaded for the rest.
		restart = append(restart, "users.quota_*")
	}
	cfg := apply(cur.cfg, next)
	l, err := newLive(cfg, cur)
	if err != nil {
		return err
	}
	proxies, err := forwarded.Parse(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	var policy *retention.Policy
	if len(cfg.Retention) > 0 {
		if policy, err = retention.NewPolicy(cfg.Retention, cfg.Hold); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	if s.tls != nil {
		// Last of what can fail: it swaps the certificate if it succeeds.
		if err := s.tls.Reload(cfg.TLS.Files()); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	s.live.Store(l)
	s.proxies.Store(proxies)
	if s.sweeper != nil {
		s.sweeper.Set(policy, cfg.RetentionSweep)
	}
	s.setLevel(Level(cfg.Log.Level), func() { s.logReload(changed, restart) })
	return nil
}

// setLevel sets the log level, calling logf under the more verbose of the
// old and new levels: the reload that quietens the log is still logged, and
// so is the one that makes it verbose again.
func (s *Server) setLevel(level slog.Level, logf func()) {
	if s.LogLevel == nil {
		logf()
		return
	}
	if level > s.LogLevel.Level() {
		logf()
		s.LogLevel.Set(level)
		return
	}
	s.LogLevel.Set(level)
	logf()
}

// logReload names the keys a reload applied, and those it did not.
func (s *Server) logReload(changed, restart []string) {
	var applied []string
	for _, k := range changed {
		if !slices.Contains(restart, k) {
			applied = append(applied, k)
		}
	}
	s.log.Info("configuration reloaded", "changed", strings.Join(applied, " "))
	if len(restart) > 0 {
		s.log.Warn("configuration keys changed that take effect only after a restart; they keep their running values",
			"keys", strings.Join(restart, " "))
	}
}

// Level returns the slog level of a [log] level ("debug", "info", "warn",
// "error"); anything else is info.
func Level(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(name)); err != nil {
		return slog.LevelInfo
	}
	return l
}
