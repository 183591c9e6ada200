package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attachd/attachd/plugins/host"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	inflight     *prometheus.GaugeVec
	authFailures prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) metrics {
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attachd_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "attachd_http_request_duration_seconds", Help: "HTTP request duration by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attachd_http_request_bytes_total", Help: "Request body bytes declared by clients.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attachd_http_response_bytes_total", Help: "Response body bytes written.",
		}, []string{"route"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "attachd_http_requests_in_flight", Help: "Requests being served.",
		}, []string{"route"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attachd_auth_failures_total", Help: "Requests refused for missing or wrong credentials.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inflight, m.authFailures)
	return m
}

func (m metrics) observe(route, method string, code int, in, out int64, d time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, codeLabel(code)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	if in > 0 {
		m.bytesIn.WithLabelValues(route).Add(float64(in))
	}
	m.bytesOut.WithLabelValues(route).Add(float64(out))
}

// Every label value comes from a closed set: each distinct value is a series
// the registry keeps for ever, so a value taken from the request as sent
// would let any client grow the server's memory.

// methodLabel returns method if it is one attachd or its clients use, else "other".
func methodLabel(method string) string {
	switch method {
	case "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
		"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK":
		return method
	}
	return "other"
}

// codeLabel returns the status code as a label: there are at most 500 of them.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// quotaCollector reports each quota's usage and limits on each scrape,
// labelled with the quota's prefix as configured: a closed set.
type quotaCollector struct{ s *Server }

var (
	quotaUsedBytes    = prometheus.NewDesc("attachd_quota_used_bytes", "Bytes of the objects below each quota's folder.", []string{"quota"}, nil)
	quotaUsedObjects  = prometheus.NewDesc("attachd_quota_used_objects", "Objects below each quota's folder.", []string{"quota"}, nil)
	quotaLimitBytes   = prometheus.NewDesc("attachd_quota_limit_bytes", "Each quota's bytes (0: no limit).", []string{"quota"}, nil)
	quotaLimitObjects = prometheus.NewDesc("attachd_quota_limit_objects", "Each quota's objects (0: no limit).", []string{"quota"}, nil)
)

func (c quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- quotaUsedBytes
	ch <- quotaUsedObjects
	ch <- quotaLimitBytes
	ch <- quotaLimitObjects
}

func (c quotaCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qs, err := c.s.store.Quotas(ctx)
	if err != nil {
		c.s.log.Warn("quota usage unavailable for /metrics", "err", err)
		return
	}
	for _, q := range qs {
		ch <- prometheus.MustNewConstMetric(quotaUsedBytes, prometheus.GaugeValue, float64(q.UsedBytes), q.Name)
		ch <- prometheus.MustNewConstMetric(quotaUsedObjects, prometheus.GaugeValue, float64(q.UsedObjects), q.Name)
		ch <- prometheus.MustNewConstMetric(quotaLimitBytes, prometheus.GaugeValue, float64(q.Bytes), q.Name)
		ch <- prometheus.MustNewConstMetric(quotaLimitObjects, prometheus.GaugeValue, float64(q.Objects), q.Name)
	}
}

// Version and Commit say which attachd this is, in attachd_build_info; main
// sets them from its build flags before New. An empty Commit is taken from
// the build information Go records.
var (
	Version = "devel"
	Commit  = ""
)

// buildInfo returns the constant attachd_build_info gauge: 1, labelled with
// the version, the VCS commit the binary was built from ("" if unknown) and
// the Go release that built it.
func buildInfo() prometheus.Collector {
	commit := Commit
	if bi, ok := debug.ReadBuildInfo(); ok && commit == "" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "attachd_build_info", Help: "Always 1; the labels say which attachd this is.",
		ConstLabels: prometheus.Labels{"version": Version, "commit": commit, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// pluginCollector reports each plugin's state from its supervisor on each
// scrape, labelled with the plugin's configured name: a closed set.
type pluginCollector struct{ s *Server }

var (
	pluginUp       = prometheus.NewDesc("attachd_plugin_up", "1 while the plugin serves calls, else 0 (starting, restarting, disabled).", []string{"plugin"}, nil)
	pluginRestarts = prometheus.NewDesc("attachd_plugin_restarts_total", "Times the plugin was restarted after a crash or a failed health check.", []string{"plugin"}, nil)
)

func (c pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginUp
	ch <- pluginRestarts
}

func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.s.pluginStatus() {
		up := 0.0
		if p.State == host.Ready {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(pluginUp, prometheus.GaugeValue, up, p.Name)
		ch <- prometheus.MustNewConstMetric(pluginRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
	}
}

// usageEvery is how long the figures of usageCollector are reused: they
// sum the whole index, which need not happen on every scrape.
const usageEvery = 30 * time.Second

// usageCollector reports how many objects the index holds and their bytes.
type usageCollector struct {
	s *Server

	mu             sync.Mutex
	at             time.Time // when bytes and objects were read; zero: never
	bytes, objects int64
}

var (
	storedObjects = prometheus.NewDesc("attachd_objects", "Objects in the index (read at most every 30 s).", nil, nil)
	storedBytes   = prometheus.NewDesc("attachd_stored_bytes", "Bytes of the objects in the index (read at most every 30 s).", nil, nil)
)

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storedObjects
	ch <- storedBytes
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= usageEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, n, err := c.s.store.Usage(ctx)
		if err != nil {
			c.s.log.Warn("object counts unavailable for /metrics", "err", err)
			return
		}
		c.at, c.bytes, c.objects = time.Now(), b, n
	}
	ch <- prometheus.MustNewConstMetric(storedObjects, prometheus.GaugeValue, float64(c.objects))
	ch <- prometheus.MustNewConstMetric(storedBytes, prometheus.GaugeValue, float64(c.bytes))
}

// readCacheCollector exports the read cache's counters (store/copies.go);
// nothing without a cache.
type readCacheCollector struct{ s *Server }

var (
	readCacheHits      = prometheus.NewDesc("attachd_read_cache_hits_total", "Reads of a remote blob served from this node's copy.", nil, nil)
	readCacheMisses    = prometheus.NewDesc("attachd_read_cache_misses_total", "Reads of a remote blob this node had no copy of.", nil, nil)
	readCacheFills     = prometheus.NewDesc("attachd_read_cache_fills_total", "Copies kept from whole reads of the backend (verified by their SHA-256).", nil, nil)
	readCacheEvictions = prometheus.NewDesc("attachd_read_cache_evictions_total", "Copies removed to stay within read_cache.", nil, nil)
	readCacheBytes     = prometheus.NewDesc("attachd_read_cache_bytes", "Bytes of the copies held (each counted at 64 KiB at least).", nil, nil)
	readCacheCopies    = prometheus.NewDesc("attachd_read_cache_copies", "Copies held.", nil, nil)
)

func (c readCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{readCacheHits, readCacheMisses, readCacheFills, readCacheEvictions, readCacheBytes, readCacheCopies} {
		ch <- d
	}
}

func (c readCacheCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.s.store.ReadCacheStats()
	if !ok {
		return
	}
	for _, m := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v int64
	}{
		{readCacheHits, prometheus.CounterValue, st.Hits}, {readCacheMisses, prometheus.CounterValue, st.Misses},
		{readCacheFills, prometheus.CounterValue, st.Fills}, {readCacheEvictions, prometheus.CounterValue, st.Evictions},
		{readCacheBytes, prometheus.GaugeValue, st.Bytes}, {readCacheCopies, prometheus.GaugeValue, int64(st.Copies)},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, float64(m.v))
	}
}

// accessLog writes the request's access line. Its fields, and every other
// log line's, keep one meaning each across attachd (docs/operations.md,
// "Logs"): remote is the client, peer the proxy it came through.
func (s *Server) accessLog(r *http.Request, rec *recorder, route, id string, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("request_id", id), slog.String("route", route), slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", rec.status),
		slog.Int64("bytes_in", max(r.ContentLength, 0)), slog.Int64("bytes_out", rec.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("user", rec.user),
		slog.String("remote", r.RemoteAddr),
	}
	if c := clientOf(r); c.Forwarded {
		attrs = append(attrs, slog.String("peer", c.Peer.String()), slog.String("scheme", c.Scheme))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}
