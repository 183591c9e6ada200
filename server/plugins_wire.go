package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/store"
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

// startStorage starts the storage plugin the configuration names, if any,
// and returns it as the store's backend.
func (s *Server) startStorage() (store.Backend, error) {
	if !s.cfg.Storage.Remote() {
		return nil, nil
	}
	name := s.cfg.Storage.Backend
	m, err := host.New(host.Config{Dir: s.cfg.Plugins.Dir, Plugins: HostPlugins(map[string]config.Plugin{name: s.cfg.Plugin[name]}),
		Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.storagePlugins = m
	b, err := m.Backend(name)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return b, nil
}

// startHooks starts the hook plugins, which read content through the open
// store, and builds their dispatcher.
func (s *Server) startHooks() error {
	if len(s.cfg.Hooks) == 0 {
		return nil
	}
	used := map[string]config.Plugin{}
	for _, h := range s.cfg.Hooks {
		used[h] = s.cfg.Plugin[h]
	}
	m, err := host.New(host.Config{Dir: s.cfg.Plugins.Dir, Plugins: HostPlugins(used), Logger: s.log,
		Content: hooks.Opener(s.store)})
	if err != nil {
		return err
	}
	s.hookPlugins = m
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
		Store: s.store, Hooks: hs, Log: s.log,

		Settings: func(name string) hooks.Settings {
			h := s.now().cfg.HookSettings(name)
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

// pluginStatus lists every plugin's state, the storage plugin's first.
func (s *Server) pluginStatus() []host.PluginStatus {
	var out []host.PluginStatus
	for _, m := range []*host.Manager{s.storagePlugins, s.hookPlugins} {
		if m != nil {
			out = append(out, m.Status()...)
		}
	}
	return out
}

// closePlugins stops every plugin: the hooks', then the storage plugin.
func (s *Server) closePlugins() {
	for _, m := range []*host.Manager{s.hookPlugins, s.storagePlugins} {
		if m != nil {
			m.Close()
		}
	}
}

// outboxCollector reports the delivery queues on each scrape: a hook's
// under attachd_hook_* with the hook's name, as in the logs and
// attachd_hook_deliveries_total; the replication spool's under
// attachd_replication_* with its node; the replaced blobs waiting to be
// removed (store.GCSink) under attachd_blob_collection_*.
type outboxCollector struct{ s *Server }

// queueDescs are the three figures of one kind of queue.
type queueDescs struct{ depth, age, dead *prometheus.Desc }

func newQueueDescs(prefix, label, what string) queueDescs {
	var labels []string
	if label != "" {
		labels = []string{label}
	}
	return queueDescs{
		depth: prometheus.NewDesc(prefix+"_queue_depth", "Deliveries waiting"+what+".", labels, nil),
		age:   prometheus.NewDesc(prefix+"_oldest_pending_seconds", "Age of the oldest waiting delivery"+what+".", labels, nil),
		dead:  prometheus.NewDesc(prefix+"_dead_letters", "Deliveries given up on"+what+".", labels, nil),
	}
}

var (
	hookQueue        = newQueueDescs("attachd_hook", "hook", ", per hook")
	replicationQueue = newQueueDescs("attachd_replication", "node", ", per node whose spool it is (\"\" for a single node)")
	gcQueue          = newQueueDescs("attachd_blob_collection", "", " of replaced blobs to remove from the backend")
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, q := range []queueDescs{hookQueue, replicationQueue, gcQueue} {
		ch <- q.depth
		ch <- q.age
		ch <- q.dead
	}
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.s.store.OutboxStats(ctx)
	if err != nil {
		c.s.log.Warn("hook and replication queues unavailable for /metrics", "err", err)
		return
	}
	// A hook whose queue is empty has no row: it is reported as 0.
	for _, h := range c.s.cfg.Hooks {
		if !slices.ContainsFunc(stats, func(st store.SinkStats) bool { return st.Sink == hooks.Sink(h) }) {
			stats = append(stats, store.SinkStats{Sink: hooks.Sink(h)})
		}
	}
	for _, st := range stats {
		// Sink names are written by attachd, never by a client: hooks.Sink
		// of a configured hook, or store.ReplicateSink with a node's id.
		var q queueDescs
		var labels []string
		if name, ok := strings.CutPrefix(st.Sink, hooks.Sink("")); ok {
			q, labels = hookQueue, []string{name}
		} else if rest, ok := strings.CutPrefix(st.Sink, store.ReplicateSink); ok {
			q, labels = replicationQueue, []string{strings.TrimPrefix(rest, "@")}
		} else if st.Sink == store.GCSink {
			q = gcQueue
		} else {
			continue
		}
		ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(st.Pending), labels...)
		age := 0.0
		if !st.OldestPending.IsZero() {
			age = time.Since(st.OldestPending).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(q.age, prometheus.GaugeValue, age, labels...)
		ch <- prometheus.MustNewConstMetric(q.dead, prometheus.GaugeValue, float64(st.Dead), labels...)
	}
}
