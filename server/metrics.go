package server

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
