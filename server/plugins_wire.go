package server

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/hooks"
)

// sinks returns the outbox subscribers the configuration asks for: one per hook.
func sinks(cfg config.Config) []string {
	var out []string
	for _, h := range cfg.Hooks {
		out = append(out, hooks.Sink(h))
	}
	return out
}

// HostPlugins converts [plugin.NAME] tables to what the plugin host takes:
// the host does not depend on the server's configuration package.
func HostPlugins(ps map[string]config.Plugin) map[string]host.Plugin {
	out := make(map[string]host.Plugin, len(ps))
	for name, p := range ps {
		out[name] = host.Plugin(p)
	}
	return out
}

// startPlugins starts the plugins the configuration uses, the storage
// backend's and the hooks', and builds the hook dispatcher.
func (s *Server) startPlugins() error {
	used := map[string]config.Plugin{}
	for _, h := range s.cfg.Hooks {
		used[h] = s.cfg.Plugin[h]
	}
	if b := s.cfg.Storage.Backend; s.cfg.Storage.Remote() {
		used[b] = s.cfg.Plugin[b]
	}
	if len(used) == 0 {
		return nil
	}
	// Hooks read content through the store, which opens after the plugins.
	content := func(ctx context.Context, key, sha256 string) (io.ReadCloser, error) {
		return hooks.Opener(s.store)(ctx, key, sha256)
	}
	m, err := host.New(host.Config{Dir: s.cfg.Plugins.Dir, Plugins: HostPlugins(used), Logger: s.log, Content: content})
	if err != nil {
		return err
	}
	s.plugins = m
	if len(s.cfg.Hooks) == 0 {
		return nil
	}
	hs := map[string]hooks.Hook{}
	for _, name := range s.cfg.Hooks {
		h, err := m.Hook(name)
		if err != nil {
			return fmt.Errorf("hooks: %w", err)
		}
		hs[name] = h
	}
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "attachd_hook_deliveries_total", Help: "Hook delivery attempts by hook and outcome (ok, retry, fail, error).",
	}, []string{"hook", "outcome"})
	s.reg.MustRegister(deliveries)
	s.dispatcher = &hooks.Dispatcher{
		Hooks: hs, Log: s.log, // Store is set once the store opens, after the plugins

		Settings: func(name string) hooks.Settings {
			h := s.cfg.HookSettings(name)
			return hooks.Settings{Concurrency: h.Concurrency, Timeout: time.Duration(h.Timeout),
				MaxAttempts: h.MaxAttempts, MaxAge: time.Duration(h.MaxAge),
				MinBackoff: time.Duration(h.MinBackoff), MaxBackoff: time.Duration(h.MaxBackoff)}
		},
		Delivered: func(hook string, o hooks.Outcome, err error) {
			outcome := [...]string{"ok", "retry", "fail"}[o]
			if err != nil {
				outcome = "error"
			}
			deliveries.WithLabelValues(hook, outcome).Inc()
		},
	}
	return nil
}

// outboxCollector reports the delivery queues on each scrape.
type outboxCollector struct{ s *Server }

var (
	queueDepth = prometheus.NewDesc("attachd_hook_queue_depth", "Deliveries waiting, per sink.", []string{"sink"}, nil)
	queueAge   = prometheus.NewDesc("attachd_hook_oldest_pending_seconds", "Age of the oldest waiting delivery, per sink.", []string{"sink"}, nil)
	deadLetter = prometheus.NewDesc("attachd_hook_dead_letters", "Deliveries given up on, per sink.", []string{"sink"}, nil)
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepth
	ch <- queueAge
	ch <- deadLetter
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.s.store.OutboxStats(ctx)
	if err != nil {
		return
	}
	for _, st := range stats {
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(st.Pending), st.Sink)
		age := 0.0
		if !st.OldestPending.IsZero() {
			age = time.Since(st.OldestPending).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(queueAge, prometheus.GaugeValue, age, st.Sink)
		ch <- prometheus.MustNewConstMetric(deadLetter, prometheus.GaugeValue, float64(st.Dead), st.Sink)
	}
}
